/* Config files: INI text fed to libinih line by line, with its sections. */
#include "app/config_int.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/err.h"

/* ---- sections -------------------------------------------------------- */

static struct wn_forward_cfg *find_forward(struct wn_config *cfg,
                                           const char *name)
{
	for (size_t i = 0; i < cfg->n_forwards; i++)
		if (strcmp(cfg->forwards[i].name, name) == 0)
			return &cfg->forwards[i];
	return NULL;
}

static bool forward_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > WN_FORWARD_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	return true;
}

/* State of one file being parsed: the reader feeds inih line by line, so
 * it knows the line number of each key (this inih build has no
 * INI_HANDLER_LINENO) and checks what inih would silently accept. */
struct parse {
	struct wn_config *cfg;
	const char *name;
	const char *dir;
	const char *text;
	size_t len, off;
	unsigned line;
	size_t diags_before;
	/* The section the reader saw last; keys in a bad section are
	 * ignored so one mistake does not cascade. */
	unsigned sec; /* 0: none yet or invalid */
	char secname[WN_FORWARD_NAME_MAX + 16];
	bool seen_section;
	size_t fwd_idx;
	size_t socks_idx;
};

static void perr(struct parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void perr(struct parse *p, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wn_config_diag(p->cfg, "%s:%u: %s", p->name, p->line, msg);
}

static struct wn_socks5_cfg *find_socks(struct wn_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_socks; i++)
		if (strcmp(cfg->socks[i].name, name) == 0)
			return &cfg->socks[i];
	return NULL;
}

static void open_socks_section(struct parse *p, const char *sname)
{
	struct wn_socks5_cfg *sk;
	char origin[WN_ORIGIN_MAX];

	while (*sname == ' ')
		sname++;
	if (!*sname) {
		perr(p, "a socks5 section needs a name: [socks5 NAME]");
		return;
	}
	if (!forward_name_valid(sname)) {
		perr(p,
		     "socks5 name \"%s\" must be 1-63 letters, digits, '-', "
		     "'_' or '.'",
		     sname);
		return;
	}
	sk = find_socks(p->cfg, sname);
	if (sk) {
		perr(p, "section [socks5 %s] appears twice (first at %s)",
		     sname, sk->origin);
		return;
	}
	snprintf(origin, sizeof(origin), "%s:%u", p->name, p->line);
	if (!wn_cfg_new_socks(p->cfg, sname, origin))
		return;
	p->sec = SEC_SOCKS5;
	p->socks_idx = p->cfg->n_socks - 1;
	snprintf(p->secname, sizeof(p->secname), "socks5 %s", sname);
}

static void open_udp_section(struct parse *p, const char *uname)
{
	char origin[WN_ORIGIN_MAX];

	while (*uname == ' ')
		uname++;
	if (!*uname) {
		perr(p, "a udp section needs a name: [udp NAME]");
		return;
	}
	if (!forward_name_valid(uname)) {
		perr(p,
		     "udp name \"%s\" must be 1-63 letters, digits, '-', "
		     "'_' or '.'",
		     uname);
		return;
	}
	for (size_t i = 0; i < p->cfg->n_udps; i++)
		if (strcmp(p->cfg->udps[i].name, uname) == 0) {
			perr(p, "section [udp %s] appears twice (first at %s)",
			     uname, p->cfg->udps[i].origin);
			return;
		}
	snprintf(origin, sizeof(origin), "%s:%u", p->name, p->line);
	if (!wn_cfg_new_udp(p->cfg, uname, origin))
		return;
	p->sec = SEC_UDP;
	p->fwd_idx = p->cfg->n_udps - 1;
	snprintf(p->secname, sizeof(p->secname), "udp %s", uname);
}

static void open_section(struct parse *p, const char *s, size_t n)
{
	char name[128];
	p->sec = 0;
	p->seen_section = true;
	if (n >= sizeof(name)) {
		perr(p, "section name too long");
		return;
	}
	memcpy(name, s, n);
	name[n] = '\0';
	if (strcmp(name, "server") == 0 || strcmp(name, "client") == 0) {
		bool server = name[0] == 's';
		struct wn_server_cfg *sv = &p->cfg->server;
		struct wn_client_cfg *cl = &p->cfg->client;
		bool *present = server ? &sv->present : &cl->present;
		char *origin = server ? sv->origin : cl->origin;
		if (*present && origin[0]) {
			perr(p, "section [%s] appears twice (first at %s)",
			     name, origin);
			return;
		}
		*present = true;
		snprintf(origin, WN_ORIGIN_MAX, "%s:%u", p->name, p->line);
		p->sec = server ? SEC_SERVER : SEC_CLIENT;
		snprintf(p->secname, sizeof(p->secname), "%s",
		         server ? "server" : "client");
		return;
	}
	if (strncmp(name, "forward", 7) == 0 &&
	    (name[7] == '\0' || name[7] == ' ')) {
		const char *fname = name + 7;
		while (*fname == ' ')
			fname++;
		if (!*fname) {
			perr(p,
			     "a forward section needs a name: [forward NAME]");
			return;
		}
		if (!forward_name_valid(fname)) {
			perr(
			    p,
			    "forward name \"%s\" must be 1-63 letters, digits, "
			    "'-', '_' or '.'",
			    fname);
			return;
		}
		struct wn_forward_cfg *f = find_forward(p->cfg, fname);
		if (f) {
			perr(p,
			     "section [forward %s] appears twice (first at "
			     "%s)",
			     fname, f->origin);
			return;
		}
		f = grow(p->cfg, &p->cfg->forwards, &p->cfg->n_forwards,
		         sizeof(*f));
		if (!f)
			return;
		snprintf(f->name, sizeof(f->name), "%s", fname);
		snprintf(f->origin, sizeof(f->origin), "%s:%u", p->name,
		         p->line);
		p->sec = SEC_FORWARD;
		p->fwd_idx = p->cfg->n_forwards - 1;
		snprintf(p->secname, sizeof(p->secname), "forward %s", fname);
		return;
	}
	if (strncmp(name, "socks5", 6) == 0 &&
	    (name[6] == '\0' || name[6] == ' ')) {
		open_socks_section(p, name + 6);
		return;
	}
	if (strncmp(name, "udp", 3) == 0 &&
	    (name[3] == '\0' || name[3] == ' ')) {
		open_udp_section(p, name + 3);
		return;
	}
	perr(p,
	     "unknown section [%s] (expected [server], [client], "
	     "[forward NAME], [socks5 NAME] or [udp NAME])",
	     name);
}

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Checks one raw line (without its newline). Returns true if it should be
 * handed to inih as is, false if it was handled or rejected here. */
static bool check_line(struct parse *p, const char *s, size_t n)
{
	while (n > 0 &&
	       (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	if (n == 0 || s[0] == ';' || s[0] == '#')
		return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close) {
			perr(p, "expected ']' to close the section name");
			p->sec = 0;
			return false;
		}
		const char *rest = close + 1;
		size_t rn = n - (size_t)(rest - s);
		while (rn > 0 && (*rest == ' ' || *rest == '\t')) {
			rest++;
			rn--;
		}
		if (rn > 0 && *rest != ';' && *rest != '#') {
			perr(p, "unexpected text after the section name");
			p->sec = 0;
			return false;
		}
		open_section(p, s + 1, (size_t)(close - s - 1));
		return false;
	}
	const char *eq = memchr(s, '=', n);
	const char *colon = memchr(s, ':', n);
	if (!eq || (colon && colon < eq)) {
		perr(p, "expected KEY = VALUE");
		return false;
	}
	size_t kn = (size_t)(eq - s);
	while (kn > 0 && (s[kn - 1] == ' ' || s[kn - 1] == '\t'))
		kn--;
	if (kn == 0) {
		perr(p, "expected a key name before '='");
		return false;
	}
	for (size_t i = 0; i < kn; i++)
		if (!key_char(s[i])) {
			perr(p,
			     "key \"%.*s\" must be lower-case letters, digits "
			     "and '-'",
			     (int)kn, s);
			return false;
		}
	if (p->sec == 0) {
		if (!p->seen_section)
			perr(p, "key \"%.*s\" is outside any section", (int)kn,
			     s);
		return false; /* in a bad section: already reported */
	}
	return true;
}

/* inih reader: returns the next line, pre-checked. inih's own line buffer
 * holds INI_MAX_LINE (200) bytes; longer lines are rejected here. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	while (p->off < p->len) {
		const char *s = p->text + p->off;
		const char *nl = memchr(s, '\n', p->len - p->off);
		size_t n = nl ? (size_t)(nl - s) : p->len - p->off;
		p->off += n + (nl ? 1 : 0);
		p->line++;
		if (memchr(s, '\0', n)) {
			perr(p, "NUL byte in line");
			continue;
		}
		/* Leading blanks are dropped so inih never treats an indented
		 * line as a continuation of the previous value. */
		while (n > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		if (p->line == 1 && n >= 3 &&
		    memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3;
			n -= 3;
		}
		if (n + 2 > (size_t)num) {
			perr(p, "line longer than %d characters", num - 2);
			continue;
		}
		if (!check_line(p, s, n))
			continue;
		memcpy(str, s, n);
		str[n] = '\n';
		str[n + 1] = '\0';
		return str;
	}
	return NULL;
}

static int handler(void *user, const char *section, const char *name,
                   const char *value)
{
	struct parse *p = user;
	char origin[WN_ORIGIN_MAX];
	snprintf(origin, sizeof(origin), "%s:%u", p->name, p->line);
	struct setting st = {
	    .cfg = p->cfg,
	    .origin = origin,
	    .secname = p->secname,
	    .dir = p->dir,
	    .from_file = true,
	    .line = p->line,
	};
	(void)section; /* the reader tracks sections with their lines */
	struct wn_forward_cfg *f =
	    p->sec == SEC_FORWARD ? &p->cfg->forwards[p->fwd_idx]
	    : p->sec == SEC_UDP   ? &p->cfg->udps[p->fwd_idx]
	                          : NULL;
	struct wn_socks5_cfg *sk =
	    p->sec == SEC_SOCKS5 ? &p->cfg->socks[p->socks_idx] : NULL;
	wn_cfg_apply(&st, p->sec, f, sk, name, value);
	return 1; /* keep going: report every problem */
}

int wn_config_parse_string(struct wn_config *cfg, const char *name,
                           const char *dir, const char *text, size_t len)
{
	struct parse p = {
	    .cfg = cfg,
	    .name = name,
	    .dir = dir,
	    .text = text,
	    .len = len,
	};
	size_t before = cfg->n_diags;
	int rc = ini_parse_stream(reader, &p, handler, &p);
	if (rc > 0 && cfg->n_diags == before)
		wn_config_diag(cfg, "%s: syntax error", name);
	else if (rc < 0)
		wn_config_diag(cfg, "%s: cannot parse (out of memory)", name);
	return cfg->n_diags == before && !cfg->oom ? 0 : WN_ECONFIG;
}

int wn_config_parse_file(struct wn_config *cfg, const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (!f) {
		int err = errno;
		wn_config_diag(cfg, "%s: cannot open: %s", path, strerror(err));
		return wn_err_from_errno(err);
	}
	cfg->parsing_mode = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)
	                        ? (int)(st.st_mode & 07777)
	                        : -1;
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			if (cap >= (1u << 20)) {
				free(buf);
				buf = NULL;
				fclose(f);
				wn_config_diag(cfg, "%s: larger than 1 MiB",
				               path);
				return WN_ECONFIG;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	int rerr = ferror(f);
	fclose(f);
	if (!buf || rerr) {
		free(buf);
		wn_config_diag(cfg, "%s: cannot read", path);
		return WN_EIO;
	}
	char dir[WN_PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	int rc =
	    wn_config_parse_string(cfg, path, slash ? dir : NULL, buf, len);
	cfg->parsing_mode = -1;
	/* The text may hold passwords and passphrases. */
	sodium_memzero(buf, len);
	free(buf);
	return rc;
}
