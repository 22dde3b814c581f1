/* `warren genkey` and `warren pubkey`, used like `wg genkey | wg pubkey`:
 *
 *   umask 077; warren genkey > server.key
 *   warren pubkey < server.key      (prints the public key: the identity)
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/commands.h"
#include "app/keyfile.h"
#include "crypto/key.h"
#include "util/err.h"

int wn_cmd_genkey(int argc, char **argv)
{
	(void)argv;
	if (argc > 0) {
		fprintf(stderr, "usage: warren genkey > FILE\n");
		return 2;
	}
	struct stat st;
	if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_mode & (S_IRWXG | S_IRWXO)))
		fprintf(
		    stderr,
		    "warren genkey: warning: writing a private key to a "
		    "file readable by group or others; warren will refuse "
		    "to load it. Run `umask 077` first, or chmod 600 it.\n");
	struct wn_identity id;
	if (wn_identity_generate(&id) != 0) {
		fprintf(stderr, "warren genkey: cannot get randomness\n");
		return 1;
	}
	/* Written with write(2), not stdio, so no copy of the key stays in
	 * stdout's buffer. */
	char b64[WN_KEY_B64_LEN + 2];
	wn_key_encode(id.seed, b64);
	wn_identity_wipe(&id);
	b64[WN_KEY_B64_LEN] = '\n';
	size_t off = 0, len = WN_KEY_B64_LEN + 1; /* the key and '\n' */
	while (off < len) {
		ssize_t n = write(STDOUT_FILENO, b64 + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	int ok = off == len;
	sodium_memzero(b64, sizeof(b64));
	if (!ok) {
		fprintf(stderr, "warren genkey: cannot write: %s\n",
		        strerror(errno));
		return 1;
	}
	return 0;
}

int wn_cmd_pubkey(int argc, char **argv)
{
	(void)argv;
	if (argc > 0) {
		fprintf(stderr, "usage: warren pubkey < PRIVATE-KEY-FILE\n");
		return 2;
	}
	char buf[256];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr,
			        "warren pubkey: cannot read stdin: %s\n",
			        strerror(errno));
			return 1;
		}
		len += (size_t)n;
		if (n == 0 || len == sizeof(buf))
			break;
	}
	struct wn_identity id;
	int rc =
	    len < sizeof(buf) ? wn_keyfile_parse(buf, len, &id) : WN_EINVAL;
	sodium_memzero(buf, sizeof(buf));
	if (rc != 0) {
		fprintf(stderr,
		        "warren pubkey: stdin does not hold one private key "
		        "(44 base64 characters, as written by `warren "
		        "genkey`)\n");
		return 1;
	}
	char b64[WN_KEY_B64_LEN + 1];
	wn_key_encode(id.ed_pk, b64);
	wn_identity_wipe(&id);
	printf("%s\n", b64);
	return fflush(stdout) == 0 ? 0 : 1;
}
