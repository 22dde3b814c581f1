#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "app/keyfile.h"
#include "crypto/key.h"
#include "util/err.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/wn-keyfile-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_load_good_key(void **state)
{
	(void)state;
	struct wn_identity id, back;
	assert_int_equal(wn_identity_generate(&id), 0);
	char b64[WN_KEY_B64_LEN + 1], text[64], path[128];
	wn_key_encode(id.seed, b64);
	snprintf(text, sizeof(text), "%s\n", b64);
	snprintf(path, sizeof(path), "%s/good.key", dir);
	write_file(path, text, 0600);
	char why[256] = "";
	assert_int_equal(wn_keyfile_load(path, &back, why, sizeof(why)), 0);
	assert_memory_equal(back.ed_pk, id.ed_pk, 32);
	assert_memory_equal(back.x_sk, id.x_sk, 32);
	/* 0400 is fine too */
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(wn_keyfile_load(path, &back, why, sizeof(why)), 0);
}

static void test_loose_permissions_refused(void **state)
{
	(void)state;
	struct wn_identity id;
	assert_int_equal(wn_identity_generate(&id), 0);
	char b64[WN_KEY_B64_LEN + 1], path[128];
	wn_key_encode(id.seed, b64);
	snprintf(path, sizeof(path), "%s/loose.key", dir);
	const mode_t modes[] = {0644, 0640, 0604, 0660, 0610};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		write_file(path, b64, modes[i]);
		char why[256] = "";
		assert_int_equal(wn_keyfile_load(path, &id, why, sizeof(why)),
		                 WN_EKEYPERM);
		assert_non_null(strstr(why, "chmod 600"));
	}
}

static void test_bad_content_and_missing_file(void **state)
{
	(void)state;
	struct wn_identity id;
	char path[128], why[256];
	snprintf(path, sizeof(path), "%s/bad.key", dir);
	const char *bad[] = {
	    "", "\n", "hello\n",
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nX\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, bad[i], 0600);
		assert_int_equal(wn_keyfile_load(path, &id, why, sizeof(why)),
		                 WN_EINVAL);
	}
	snprintf(path, sizeof(path), "%s/missing.key", dir);
	assert_int_equal(wn_keyfile_load(path, &id, why, sizeof(why)),
	                 WN_ENOENT);
	assert_int_equal(wn_keyfile_load(dir, &id, why, sizeof(why)),
	                 WN_EINVAL); /* a directory */
}

static void test_parse_tolerates_blanks(void **state)
{
	(void)state;
	struct wn_identity id;
	const char *k = "  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n";
	assert_int_equal(wn_keyfile_parse(k, strlen(k), &id), 0);
}

/* A FIFO in the key file's place is refused at once: opening it for
 * reading must not wait for a writer (the alarm turns a hang into a
 * failure). */
static void test_fifo_refused_without_hanging(void **state)
{
	(void)state;
	struct wn_identity id;
	char path[128], why[256] = "";

	snprintf(path, sizeof(path), "%s/fifo.key", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(5);
	assert_int_equal(wn_keyfile_load(path, &id, why, sizeof(why)),
	                 WN_EINVAL);
	alarm(0);
	assert_non_null(strstr(why, "not a regular file"));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load_good_key),
	    cmocka_unit_test(test_loose_permissions_refused),
	    cmocka_unit_test(test_fifo_refused_without_hanging),
	    cmocka_unit_test(test_bad_content_and_missing_file),
	    cmocka_unit_test(test_parse_tolerates_blanks),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
