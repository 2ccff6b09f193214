/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpopctl.h: what dpopctl.c shares with the helpers in core/dpopctl_*.c
 * (input of secrets and files, request checks, the jwks and hash-token
 * commands).  CLI code only: nothing here is part of libdpopcore.
 *
 * Never print a token, a proof or a private key in a message: the helpers
 * name the option or the file, never the value.
 */
#ifndef DPOPCTL_H
#define DPOPCTL_H

#include <stddef.h>

#define DPOPCTL_EXIT_VALID 0
#define DPOPCTL_EXIT_INVALID 1
#define DPOPCTL_EXIT_USAGE 2

/* Inputs are bounded: a proof, token, JWK or JWKS is never this large. */
#define DPOPCTL_INPUT_MAX (1024 * 1024)

extern const char *dpopctl_prog;

/* Read a whole file ("-" = stdin), at most DPOPCTL_INPUT_MAX bytes; *buf is
 * NUL-terminated and the caller frees it with
 * OPENSSL_clear_free(*buf, *len + 1) (it may hold a key or a token).
 * On failure prints "dpopctl: FILE: what is wrong" (the file named once, in
 * the user's words) and returns DPOPCTL_EXIT_USAGE; else 0. */
int dpopctl_read_file(const char *path, char **buf, size_t *len);

/* A token or proof given as an argument, "-" (stdin) or a file.  Trimmed
 * of surrounding whitespace when read; wiped when released. */
typedef struct {
    char *buf;
    size_t len;
    int owned;
} dpopctl_secret_t;

/* Exactly one of arg ("-" reads stdin) and file may be set (both NULL:
 * *s stays empty and 0 is returned).  opt names the option in messages
 * ("--access-token").  Returns 0 or DPOPCTL_EXIT_USAGE (message printed). */
int dpopctl_secret_open(const char *cmd, const char *opt, const char *arg, const char *file,
                        dpopctl_secret_t *s);
void dpopctl_secret_close(dpopctl_secret_t *s);

/* RFC 9110 §9.1: a method is a token, compared case-sensitively.  0 when
 * acceptable, else -1 with a message (and a hint for "get") in err. */
int dpopctl_method_check(const char *method, char *err, size_t errsz);

/* An absolute http(s) URL with a host (dpop_htu_normalize accepts it).
 * 0 when acceptable, else -1 with a message in err. */
int dpopctl_url_check(const char *url, char *err, size_t errsz);

/* RFC 9449 §4.2: htu is the target URI without query and fragment.  A
 * malloc'ed copy of url cut at the first '?' or '#' (caller frees), or
 * NULL when out of memory. */
char *dpopctl_htu_of(const char *url);

int dpopctl_cmd_jwks(int argc, char **argv);
int dpopctl_cmd_hash_token(int argc, char **argv);

#endif /* DPOPCTL_H */
