/* warren's one error vocabulary.
 *
 * Every function that can fail returns 0 (WN_OK) or a negative WN_E* code.
 * errno and libuv codes are translated into this vocabulary at the I/O
 * boundary only (wn_err_from_errno, wn_err_from_uv); nothing above src/io/
 * ever looks at errno. wn_strerror gives the one human string per code. */
#ifndef WN_UTIL_ERR_H
#define WN_UTIL_ERR_H

/* X-macro: name, value, message. Keep values stable: they appear in logs and
 * in the HTTP API. */
#define WN_ERRORS(X)                                                     \
	X(WN_OK, 0, "success")                                           \
	X(WN_ENOMEM, -1, "out of memory")                                \
	X(WN_EINVAL, -2, "invalid argument")                             \
	X(WN_EAGAIN, -3, "resource temporarily unavailable")             \
	X(WN_ENOSPC, -4, "no space left in buffer")                      \
	X(WN_ETRUNC, -5, "input truncated")                              \
	X(WN_EPROTO, -6, "protocol violation")                           \
	X(WN_ECRYPTO, -7, "authentication failed")                       \
	X(WN_ECLOSED, -8, "closed")                                      \
	X(WN_ETIMEDOUT, -9, "timed out")                                 \
	X(WN_ECONNREFUSED, -10, "connection refused")                    \
	X(WN_ECONNRESET, -11, "connection reset")                        \
	X(WN_EUNREACH, -12, "unreachable")                               \
	X(WN_EADDRINUSE, -13, "address in use")                          \
	X(WN_EPERM, -14, "permission denied")                            \
	X(WN_ENOENT, -15, "no such file or directory")                   \
	X(WN_EIO, -16, "input/output error")                             \
	X(WN_EDENIED, -17, "denied by policy")                           \
	X(WN_ECONFIG, -18, "invalid configuration")                      \
	X(WN_EKEYPERM, -19, "key file is accessible by group or others") \
	X(WN_EEXIST, -20, "already exists")                              \
	X(WN_ENOTSUP, -21, "not supported")                              \
	X(WN_ERANGE, -22, "value out of range")                          \
	X(WN_EINTERNAL, -23, "internal error")                           \
	X(WN_EMSGSIZE, -24, "message too long")

enum wn_err {
#define WN_ERR_ENUM_(name, value, msg) name = value,
	WN_ERRORS(WN_ERR_ENUM_)
#undef WN_ERR_ENUM_
};

/* Returns a static, never-NULL string for any int; unknown codes give
 * "unknown error". */
const char *wn_strerror(int err);

/* Returns the symbolic name ("WN_EINVAL") of a code, or "WN_E?" if unknown. */
const char *wn_errname(int err);

/* Translate a positive errno value into the vocabulary. Only src/io/ and
 * the few syscall sites in src/app/ (key files, config files) call this. */
int wn_err_from_errno(int errnum);

/* Translate a libuv error (negative UV_E* value) into the vocabulary. */
int wn_err_from_uv(int uverr);

#endif
