/* A container's record on disk (container.json): what survives a daemon restart. */
#ifndef SHOAL_RUNTIME_CTR_RECORD_H
#define SHOAL_RUNTIME_CTR_RECORD_H

#include <stdint.h>

#include "lib/err.h"
#include "runtime/container.h"

/* Write @c's record to @path atomically: id, name, creation time, image,
 * resolved args, driver, spec (ctr_spec_to_json), state (status, pid and the
 * pid's start time, exit code, OOM flag, error, start and finish times) and
 * restart count. */
int ctr_record_save(const struct container *c, const char *path, uint64_t pid_start,
		    struct shoal_err *err);

/* Read a record into @c (zeroed by the caller; on failure it may hold
 * partial heap data: free its spec and args). SHOAL_EPROTO for a record
 * that does not parse. */
int ctr_record_load(const char *path, struct container *c, uint64_t *pid_start,
		    struct shoal_err *err);

#endif
