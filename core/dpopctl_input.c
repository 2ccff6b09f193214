/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpopctl_input.c: how dpopctl reads its inputs and checks the request it
 * is asked to sign for: files and stdin (bounded, messages in the user's
 * words that name the file once), tokens that must stay out of `ps`
 * (DESIGN.md: `-` and `--access-token-file`), methods (RFC 9110 §9.1) and
 * URLs (RFC 9449 §4.2).
 *
 * Never puts the content of what it reads into a message.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "dpop_htu.h"
#include "dpopctl.h"

/* What an errno means to someone who typed a file name. */
static const char *file_problem(int err)
{
    switch (err) {
    case ENOENT:
        return "no such file";
    case EACCES:
    case EPERM:
        return "permission denied";
    case EISDIR:
        return "is a directory, not a file";
    case ENOTDIR:
        return "a part of the path is not a directory";
    case ELOOP:
        return "too many levels of symbolic links";
    case ENAMETOOLONG:
        return "the file name is too long";
    default:
        return NULL;
    }
}

static int file_error(const char *path, int err)
{
    const char *what = file_problem(err);
    if (what)
        fprintf(stderr, "%s: %s: %s\n", dpopctl_prog, path, what);
    else
        fprintf(stderr, "%s: %s: cannot read: %s\n", dpopctl_prog, path, strerror(err));
    return DPOPCTL_EXIT_USAGE;
}

int dpopctl_read_file(const char *path, char **buf, size_t *len)
{
    const char *name = strcmp(path, "-") == 0 ? "(stdin)" : path;
    size_t n = 0, cap = 4096;
    char *b = NULL;
    struct stat st;
    int fd = -1, rc = DPOPCTL_EXIT_USAGE;

    *buf = NULL;
    *len = 0;
    if (strcmp(path, "-") == 0)
        fd = STDIN_FILENO;
    else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return file_error(path, errno);
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = file_error(name, EISDIR);
        goto done;
    }
    if (!(b = OPENSSL_malloc(cap + 1))) {
        fprintf(stderr, "%s: out of memory\n", dpopctl_prog);
        goto done;
    }
    for (;;) {
        ssize_t got;
        if (n == cap) {
            char *nb;
            if (cap >= DPOPCTL_INPUT_MAX) {
                fprintf(stderr, "%s: %s: larger than %d bytes\n", dpopctl_prog, name,
                        DPOPCTL_INPUT_MAX);
                goto done;
            }
            if (!(nb = OPENSSL_clear_realloc(b, cap + 1, cap * 2 + 1))) {
                fprintf(stderr, "%s: out of memory\n", dpopctl_prog);
                goto done;
            }
            b = nb;
            cap *= 2;
        }
        got = read(fd, b + n, cap - n);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            rc = file_error(name, errno);
            goto done;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    b = NULL;
    rc = DPOPCTL_EXIT_VALID;
done:
    if (b)
        OPENSSL_clear_free(b, cap + 1);
    if (fd >= 0 && fd != STDIN_FILENO)
        close(fd);
    return rc;
}

/* A compact token read from a file or stdin ends with a newline as a rule;
 * surrounding whitespace is never part of a JWS or a token68. */
static void trim(char *s, size_t *len)
{
    size_t a = 0, n = *len;
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    while (a < n && isspace((unsigned char)s[a]))
        a++;
    memmove(s, s + a, n - a);
    s[n - a] = '\0';
    *len = n - a;
}

int dpopctl_secret_open(const char *cmd, const char *opt, const char *arg, const char *file,
                        dpopctl_secret_t *s)
{
    const char *from;
    int rc;

    s->buf = NULL;
    s->len = 0;
    s->owned = 0;
    if (arg && file) {
        fprintf(stderr, "%s %s: give %s or %s-file, not both\n", dpopctl_prog, cmd, opt, opt);
        return DPOPCTL_EXIT_USAGE;
    }
    if (!arg && !file)
        return DPOPCTL_EXIT_VALID;
    if (arg && strcmp(arg, "-") != 0) {
        s->buf = (char *)arg;
        s->len = strlen(arg);
        return DPOPCTL_EXIT_VALID;
    }
    from = file ? file : "-";
    if ((rc = dpopctl_read_file(from, &s->buf, &s->len)) != DPOPCTL_EXIT_VALID)
        return rc;
    s->owned = 1;
    trim(s->buf, &s->len);
    if (s->len == 0) {
        fprintf(stderr, "%s %s: %s: %s is empty\n", dpopctl_prog, cmd, opt, file ? file : "stdin");
        dpopctl_secret_close(s);
        return DPOPCTL_EXIT_USAGE;
    }
    return DPOPCTL_EXIT_VALID;
}

void dpopctl_secret_close(dpopctl_secret_t *s)
{
    if (s->owned && s->buf)
        OPENSSL_clear_free(s->buf, s->len + 1);
    s->buf = NULL;
    s->len = 0;
    s->owned = 0;
}

/* RFC 9110 §5.6.2 tchar */
static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* RFC 9110 §9.3 methods and RFC 5789 PATCH: the names a lowercase spelling
 * was most likely meant as. */
static const char *const known_methods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                            "CONNECT", "OPTIONS", "TRACE", "PATCH"};

int dpopctl_method_check(const char *method, char *err, size_t errsz)
{
    char upper[16];
    size_t i, n = strlen(method);

    if (n == 0) {
        snprintf(err, errsz, "--method must not be empty");
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!is_tchar((unsigned char)method[i])) {
            snprintf(err, errsz, "--method: not an HTTP method (RFC 9110 §9.1: a token)");
            return -1;
        }
    }
    if (n >= sizeof(upper))
        return 0;
    for (i = 0; i <= n; i++)
        upper[i] = (char)toupper((unsigned char)method[i]);
    if (strcmp(upper, method) == 0)
        return 0;
    /* RFC 9110 §9.1: methods are case-sensitive, so "get" is not GET and
     * the server's htm check would fail on every request. */
    for (i = 0; i < sizeof(known_methods) / sizeof(known_methods[0]); i++) {
        if (strcmp(upper, known_methods[i]) == 0) {
            snprintf(err, errsz, "--method %s: methods are case-sensitive: did you mean %s?",
                     method, known_methods[i]);
            return -1;
        }
    }
    return 0;
}

int dpopctl_url_check(const char *url, char *err, size_t errsz)
{
    char *norm = NULL;
    size_t n = strlen(url);
    const char *host;
    int rc = -1;

    if (n == 0 || n > DPOP_HTU_MAX) {
        snprintf(err, errsz, "--url must be an absolute http or https URL (1 to %d bytes)",
                 DPOP_HTU_MAX);
        return -1;
    }
    if (!(norm = malloc(n + 2)))
        goto bad;
    if (dpop_htu_normalize(url, norm, n + 2) != 0)
        goto bad;
    /* dpop_htu_normalize gives scheme://authority/path: the host is the
     * authority up to a port; it must not be empty. */
    host = strstr(norm, "://");
    if (!host || host[3] == '/' || host[3] == ':' || host[3] == '\0')
        goto bad;
    rc = 0;
    goto done;
bad:
    snprintf(err, errsz,
             "--url must be an absolute http or https URL with a host, e.g. "
             "https://api.example.com/path");
done:
    free(norm);
    return rc;
}

char *dpopctl_htu_of(const char *url)
{
    size_t n = strcspn(url, "?#");
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, url, n);
    s[n] = '\0';
    return s;
}
