/*
 * files.c: file_publish (see files.h).
 */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies the bytes of src into dst (a device, a FIFO, or the missing file
   a dangling link names, created as a plain fopen would). */
static int copy_into(const char *src, const char *dst) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return -1;
  int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (out < 0) {
    int e = errno;
    close(in);
    errno = e;
    return -1;
  }
  char buf[1 << 16];
  ssize_t n;
  int rc = 0;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, (size_t)(n - off));
      if (w < 0) {
        if (errno == EINTR)
          continue;
        rc = -1;
        break;
      }
      off += w;
    }
    if (rc)
      break;
  }
  if (n < 0)
    rc = -1;
  int e = errno;
  close(in);
  if (close(out) != 0 && rc == 0)
    rc = -1, e = errno;
  errno = e;
  return rc;
}

int file_publish(const char *tmp, const char *final) {
  struct stat sb;
  if (lstat(final, &sb) != 0 || S_ISREG(sb.st_mode))
    return rename(tmp, final); /* a new name, or a plain file */
  if (S_ISLNK(sb.st_mode) && stat(final, &sb) == 0 && S_ISREG(sb.st_mode)) {
    /* a link to a plain file (also /dev/stdout redirected to a file):
       replace the file it names, keep the link */
    char *target = realpath(final, NULL);
    int rc = target ? rename(tmp, target) : -1;
    free(target);
    if (rc == 0)
      return 0;
  }
  /* a device, a FIFO, a pipe behind /dev/stdout: write into it */
  if (copy_into(tmp, final) != 0)
    return -1;
  unlink(tmp);
  return 0;
}
