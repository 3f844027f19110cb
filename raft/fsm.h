/* The state machine interface raft/ drives, free of raft's own types. */
#ifndef SHOAL_RAFT_FSM_H
#define SHOAL_RAFT_FSM_H

#include <stddef.h>
#include <stdint.h>

/* Implemented by the store. All three run on the loop thread, in log order. */
struct consensus_fsm {
	void *arg;
	/* Apply the committed command @data at log @index. *@result is handed to the
	 * proposer's callback on the node that proposed it and dropped elsewhere, so
	 * it must not own memory (the store passes a status code). Return 0; a
	 * non-zero return stops raft and is only for corrupt state, never bad input. */
	int (*apply)(void *arg, uint64_t index, const void *data, size_t len, void **result);
	/* Serialise the whole state into a malloc'd buffer *@out of *@len bytes. */
	int (*snapshot)(void *arg, void **out, size_t *len);
	/* Replace the whole state with snapshot @data; record versions come from the
	 * snapshot itself. The buffer stays the caller's. Return 0, or non-zero if it
	 * does not decode (the state is then left as it was). */
	int (*restore)(void *arg, const void *data, size_t len);
};

#endif
