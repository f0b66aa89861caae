/*
 * The reseau side of reseau-bench-loop's trace_off scenario: reseau with its
 * tracing hooks (no tracer installed), static, built exactly as its peer
 * bench_loop_notrace.c is but for RESEAU_NO_TRACE, so that only the hooks
 * differ (not inlining across a static build against an extern one).
 */
#define RESEAU_STATIC
#define RESEAU_IMPLEMENTATION
#include "reseau.h"

#include <stdlib.h>
#include <string.h>

#include "bench_trace_work.h"

double bench_hooks_timers(size_t count);

double bench_hooks_timers(size_t count) {
    return trace_work_timers(count);
}
