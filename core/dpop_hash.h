/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dpop_hash.h: the one fast non-cryptographic hash used for in-memory hash
 * tables (key cache buckets, policy jkt index).
 *
 * It is a table index, never a security boundary: it must never be used for
 * MACs, replay keys, thumbprints or anything an attacker must not forge
 * (those go through OpenSSL EVP).  Callers confirm every hit by comparing
 * the full key bytes.  Tables fed by network input pass a random seed so an
 * attacker cannot precompute colliding keys.
 */
#ifndef DPOP_HASH_H
#define DPOP_HASH_H

#include <stddef.h>
#include <stdint.h>

/* MurmurHash3's fmix64 finalizer: every input bit affects every output bit
 * (so the low bits used as a power-of-two index are well mixed). */
uint64_t dpop_hash_mix64(uint64_t h);

/* Seeded multiply-xorshift over 8-byte words of p[0..n), finished with
 * dpop_hash_mix64.  Word-at-a-time: ~0.1 ns/byte, so hashing a ~600-byte
 * proof header costs next to nothing beside a signature check.  The result
 * depends on the host byte order: in-memory use only, never persisted. */
uint64_t dpop_hash_bytes(uint64_t seed, const void *p, size_t n);

/* A random seed from OpenSSL's RAND_bytes for tables fed by network input.
 * Returns 0 and sets *seed on success, -1 when the RNG fails (callers fail
 * closed: they refuse to build the table). */
int dpop_hash_seed(uint64_t *seed);

#endif
