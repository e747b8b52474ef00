//! Seccomp: compiles an OCI `linux.seccomp` section into a libseccomp filter and installs it.
