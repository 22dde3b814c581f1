/* Reading and writing identity key files (the private key: one base64
 * line). Key files must not be readable or writable by group or others:
 * such a file is refused, as ssh refuses a private key with loose
 * permissions. */
#ifndef WN_APP_KEYFILE_H
#define WN_APP_KEYFILE_H

#include <stddef.h>

#include "crypto/key.h"

/* Loads the identity from the key file at path. On failure returns a
 * negative WN_E* code and writes a one-line explanation (without the path)
 * into why[why_cap]: WN_ENOENT/WN_EPERM/WN_EIO for file errors, WN_EKEYPERM
 * for loose permissions, WN_EINVAL for content that is not one key. */
int wn_keyfile_load(const char *path, struct wn_identity *id, char *why,
                    size_t why_cap);

/* Parses the text of a key file: one base64 key, optionally followed by a
 * newline (surrounding blanks are tolerated). Returns 0 or WN_EINVAL. */
int wn_keyfile_parse(const char *text, size_t len, struct wn_identity *id);

#endif
