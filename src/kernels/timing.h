/* timing.h: wall clock and medians for measurements. Lives at the bottom
   layer so kernels, engine and CLI time things the same way. */
#ifndef QN_TIMING_H
#define QN_TIMING_H
#include <stddef.h>

double qn_now(void);                      /* monotonic seconds */
double qn_median(double *v, size_t n);    /* sorts v; 0 when n is 0 */

#endif
