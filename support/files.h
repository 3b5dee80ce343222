/*
 * files.h: putting a finished output file in place.
 *
 * cnncc writes every output (the .so, .o, .ll, .s, a spec, a header, a
 * safetensors file) to a temporary file beside it and renames it into
 * place, so that a reader never sees half a file and a failure leaves the
 * old one. A rename replaces whatever the name pointed at, though: with
 * `-o /dev/null` (or /dev/stdout, a FIFO) and enough rights it would swap
 * the device node for a regular file, and as root break /dev/null for the
 * whole machine (and a rename onto /dev/stdout replaces the link). So
 * file_publish renames onto a name that does not exist or a regular file,
 * onto the file a symbolic link names (the link stays), and copies the
 * bytes into anything else.
 */
#ifndef CNNCC_SUPPORT_FILES_H
#define CNNCC_SUPPORT_FILES_H

/* Puts the finished file `tmp` in place at `final` and removes `tmp`
   (renamed, or copied into a `final` that exists and is not a regular
   file). 0 on success; -1 with errno set, `tmp` left for the caller to
   remove. */
int file_publish(const char *tmp, const char *final);

#endif
