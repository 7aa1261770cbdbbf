/* SPDX-License-Identifier: GPL-2.0-only */
/* dmcoloctl's clock: milliseconds on the monotonic clock, and sleeping. */
#ifndef DMCOLOCTL_CLOCK_H
#define DMCOLOCTL_CLOCK_H

long long now_ms(void);
void sleep_ms(unsigned int ms);

#endif
