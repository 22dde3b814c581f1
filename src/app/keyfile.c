#include "app/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int wn_keyfile_parse(const char *text, size_t len, struct wn_identity *id)
{
	size_t b = 0, e = len;
	while (b < e && is_blank(text[b]))
		b++;
	while (e > b && is_blank(text[e - 1]))
		e--;
	uint8_t seed[WN_KEY_LEN];
	if (wn_key_decode(text + b, e - b, seed) != 0)
		return WN_EINVAL;
	int rc = wn_identity_from_seed(id, seed);
	sodium_memzero(seed, sizeof(seed));
	return rc;
}

int wn_keyfile_load(const char *path, struct wn_identity *id, char *why,
                    size_t why_cap)
{
	/* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	 * writer for ever, before the S_ISREG check below could refuse it.
	 * Reads of a regular file ignore the flag. Symlinks are followed:
	 * the mode checked is that of the file they name. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int err = errno;
		snprintf(why, why_cap, "cannot open key file: %s",
		         strerror(err));
		return wn_err_from_errno(err);
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int err = errno;
		close(fd);
		snprintf(why, why_cap, "cannot stat key file: %s",
		         strerror(err));
		return wn_err_from_errno(err);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(why, why_cap, "key file is not a regular file");
		return WN_EINVAL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		snprintf(why, why_cap,
		         "key file has mode %04o; it must not be accessible by "
		         "group or others (run: chmod 600 FILE)",
		         (unsigned)(st.st_mode & 07777));
		return WN_EKEYPERM;
	}
	char buf[256];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			close(fd);
			sodium_memzero(buf, sizeof(buf));
			snprintf(why, why_cap, "cannot read key file: %s",
			         strerror(err));
			return wn_err_from_errno(err);
		}
		if (n == 0 || len + (size_t)n == sizeof(buf)) {
			len += (size_t)n;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	int rc = len < sizeof(buf) ? wn_keyfile_parse(buf, len, id) : WN_EINVAL;
	sodium_memzero(buf, sizeof(buf));
	if (rc != 0)
		snprintf(why, why_cap,
		         "key file does not hold one base64 private key (as "
		         "written by `warren genkey`)");
	return rc;
}
