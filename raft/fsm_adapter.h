/* Adapts a struct consensus_fsm to canonical/raft's struct raft_fsm. */
#ifndef SHOAL_RAFT_FSM_ADAPTER_H
#define SHOAL_RAFT_FSM_ADAPTER_H

#include <raft.h>

#include "raft/fsm.h"

struct fsm_adapter {
	struct raft_fsm fsm; /* hand &a->fsm to raft_init or raft_fixture_grow */
	struct consensus_fsm ops;
	struct raft *raft; /* set once raft is initialised; used to learn entry indexes */
};

/* Log entries carry a command framed as [u64 length, little endian][command]
 * [zero padding to 8 bytes]: raft 0.15 writes entry data padded to 8 bytes but
 * reads it back assuming the length already was a multiple of 8. */
size_t fsm_frame_size(size_t len);
/* Write the frame of @data (@len bytes) into @out of fsm_frame_size(@len) bytes. */
void fsm_frame_write(void *out, const void *data, size_t len);
/* Find the command inside the frame @buf of @size bytes. Returns 0, or -1 if
 * the frame is malformed. */
int fsm_frame_read(const void *buf, size_t size, const void **data, size_t *len);

/* Fill @a so that raft's calls reach @ops. Set @a->raft once the struct raft
 * exists (after raft_init, or raft_fixture_get after raft_fixture_grow). */
void fsm_adapter_init(struct fsm_adapter *a, const struct consensus_fsm *ops);

#endif
