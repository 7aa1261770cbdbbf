/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef DMCOLOCTL_UNITS_H
#define DMCOLOCTL_UNITS_H

#include <stdint.h>

/*
 * Parse a size: a decimal number with an optional binary suffix
 * k/K (KiB), m/M, g/G, t/T, or "s" for 512-byte sectors; no suffix means
 * bytes. Returns 0 and sets *bytes, or -1 for anything else (empty,
 * negative, trailing junk, overflow).
 */
int parse_size(const char *text, uint64_t *bytes);

#endif
