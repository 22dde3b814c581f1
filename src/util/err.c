#include "util/err.h"

#include <errno.h>
#include <uv.h>

const char *wn_strerror(int err)
{
	switch (err) {
#define WN_ERR_STR_(name, value, msg) \
	case value:                   \
		return msg;
		WN_ERRORS(WN_ERR_STR_)
#undef WN_ERR_STR_
	}
	return "unknown error";
}

const char *wn_errname(int err)
{
	switch (err) {
#define WN_ERR_NAME_(name, value, msg) \
	case value:                    \
		return #name;
		WN_ERRORS(WN_ERR_NAME_)
#undef WN_ERR_NAME_
	}
	return "WN_E?";
}

int wn_err_from_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return WN_OK;
	case ENOMEM:
	case ENOBUFS:
		return WN_ENOMEM;
	case EINVAL:
		return WN_EINVAL;
	case EAGAIN:
	case EINTR:
		return WN_EAGAIN;
	case ENOSPC:
		return WN_ENOSPC;
	case ETIMEDOUT:
		return WN_ETIMEDOUT;
	case ECONNREFUSED:
		return WN_ECONNREFUSED;
	case ECONNRESET:
	case EPIPE:
	case ECONNABORTED:
		return WN_ECONNRESET;
	case ENETUNREACH:
	case EHOSTUNREACH:
	case EADDRNOTAVAIL:
		return WN_EUNREACH;
	case EADDRINUSE:
		return WN_EADDRINUSE;
	case EPERM:
	case EACCES:
		return WN_EPERM;
	case ENOENT:
		return WN_ENOENT;
	case EEXIST:
		return WN_EEXIST;
	case EOPNOTSUPP:
	case EAFNOSUPPORT:
	case EPROTONOSUPPORT:
		return WN_ENOTSUP;
	case ERANGE:
	case EMSGSIZE:
		return WN_ERANGE;
	default:
		return WN_EIO;
	}
}

int wn_err_from_uv(int uverr)
{
	if (uverr >= 0)
		return WN_OK;
	if (uverr == UV_EOF)
		return WN_ECLOSED;
	if (uverr == UV_ECANCELED)
		return WN_ECLOSED;
	if (uverr == UV_EAI_NONAME || uverr == UV_EAI_AGAIN ||
	    uverr == UV_EAI_FAIL)
		return WN_EUNREACH;
	/* libuv's UV_E* codes on Unix are negated errno values. */
	return wn_err_from_errno(-uverr);
}
