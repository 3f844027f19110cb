/* Project-wide error codes and the error holder every fallible function fills. */
#ifndef SHOAL_LIB_ERR_H
#define SHOAL_LIB_ERR_H

#include <assert.h>
#include <stddef.h>

/* Error codes: 0 is success, every failure is one of these negative values. */
enum {
	SHOAL_OK = 0,
	SHOAL_ENOMEM = -1,     /* out of memory */
	SHOAL_EINVAL = -2,     /* bad input from a user, the API or a caller */
	SHOAL_EPROTO = -3,     /* malformed bytes from the network or disk */
	SHOAL_EIO = -4,	       /* a system call or the disk failed */
	SHOAL_ENOTFOUND = -5,  /* no such object */
	SHOAL_ECONFLICT = -6,  /* version conflict, or the object already exists */
	SHOAL_ESTATE = -7,     /* not allowed in the current state (e.g. not in a swarm) */
	SHOAL_ENOTLEADER = -8, /* this manager is not the Raft leader */
	SHOAL_EUNAVAIL = -9,   /* the cluster cannot serve the request now (no quorum) */
	SHOAL_ETOOBIG = -10,   /* a size limit was exceeded */
	SHOAL_EBUSY = -11,     /* the resource is held by someone else (e.g. state dir lock) */
	SHOAL_ESHUTDOWN = -12, /* the component is closing */
	SHOAL_ETIMEDOUT = -13, /* an operation did not finish in time */
};

#define SHOAL_ERR_LEN 512

/* A sentence a user can act on. Context is prepended on the way up with
 * shoal_err_wrap(): "join 10.0.0.1:4377: token rejected by manager". */
struct shoal_err {
	char msg[SHOAL_ERR_LEN];
};

/* Set @err (which may be NULL) to the formatted message and return @code. */
int shoal_errf(struct shoal_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend "<context>: " to the message in @err (which may be NULL). */
void shoal_err_wrap(struct shoal_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A short name for an error code ("not found", "conflict", ...). */
const char *shoal_strerror(int code);

/* Invariants, kept in debug and test builds. Never for checking input. */
#ifdef SHOAL_DEBUG
#define PRE(cond)  assert(cond)
#define POST(cond) assert(cond)
#else
#define PRE(cond)  ((void)0)
#define POST(cond) ((void)0)
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
