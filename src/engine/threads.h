/* threads.h: how quench's worker threads wait on a shared machine. OpenMP
   (and the OpenMP build of OpenBLAS, which shares libgomp's pool) lets idle
   workers spin for a while before sleeping; when other processes want the
   cores, the spinning workers take their time slices and every command runs
   several times slower than on one thread (bench/bench_threads.c measures
   it). libgomp reads its settings once, before main, so the policy is set in
   the environment and the program re-executes itself. */
#ifndef QN_THREADS_H
#define QN_THREADS_H

/* Call first thing in main. Unless the user chose a policy (OMP_WAIT_POLICY
   or GOMP_SPINCOUNT set), sets OMP_WAIT_POLICY=passive (idle workers sleep
   at once) and re-executes /proc/self/exe with argv; returns only when no
   re-execution was needed or it failed (then libgomp's default stays). */
void qn_threads_startup(char **argv);

#endif
