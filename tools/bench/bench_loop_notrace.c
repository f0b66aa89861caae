/*
 * The peer of reseau-bench-loop's trace_off scenario: reseau compiled with
 * RESEAU_NO_TRACE (no hooks at all), static so that it sits beside the
 * bench_loop.c copy in one program.
 */
#define RESEAU_STATIC
#define RESEAU_NO_TRACE
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <stdlib.h>
#include <string.h>

#include "bench_trace_work.h"

double bench_notrace_timers(size_t count);

double bench_notrace_timers(size_t count) {
    return trace_work_timers(count);
}
