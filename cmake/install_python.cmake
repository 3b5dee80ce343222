# Run by `cmake --install` (install(CODE) in CMakeLists.txt, with
# CNNCC_PYTHON_DIR set): writes the installed package's _where.py, which
# names PREFIX/bin/cnncc relative to the package's folder, so that a moved
# prefix still works. CMAKE_INSTALL_PREFIX is the prefix of this install
# (--prefix).
set(pydir "${CNNCC_PYTHON_DIR}")
if(NOT IS_ABSOLUTE "${pydir}")
  set(pydir "${CMAKE_INSTALL_PREFIX}/${pydir}")
endif()
file(RELATIVE_PATH rel "${pydir}/cnncc" "${CMAKE_INSTALL_PREFIX}/bin/cnncc")
set(where "$ENV{DESTDIR}${pydir}/cnncc/_where.py")
message(STATUS "Installing: ${where}")
file(WRITE "${where}" "\"\"\"Where the cnncc of this installed package is (written by cmake --install).\"\"\"
import os


def cnncc_path():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), \"${rel}\")
")
