package broker

// DeleteGroups (key 42), versions 0-2.
//
// Behaviour: deletes groups that have no members: their committed offsets and metadata are
// tombstoned in __consumer_offsets and the group is gone (Dead). A group with members gets
// NON_EMPTY_GROUP; an unknown group GROUP_ID_NOT_FOUND. Same as Kafka.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/group"
)

func handleDeleteGroups(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.DeleteGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range r.Groups {
		sg := kmsg.NewDeleteGroupsResponseGroup()
		sg.Group = id
		if err := c.b.groups.deleteGroup(id); err != nil {
			sg.ErrorCode = err.Code
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}

// deleteGroup tombstones an empty group's offsets and metadata and forgets it.
func (c *coordinator) deleteGroup(id string) *kerr.Error {
	if err := c.ensureReady(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.lookup(id, false)
	if err != nil {
		return err
	}
	if g == nil || g.State == group.Dead {
		return kerr.GroupIDNotFound
	}
	if !g.IsEmpty() {
		return kerr.NonEmptyGroup
	}
	recs := []record{{key: groupKey(id)}}
	for tp := range g.Offsets {
		recs = append(recs, record{key: offsetKey(id, tp.Topic, tp.Partition)})
	}
	if err := c.appendRecords(id, recs); err != nil {
		c.b.log.Warn("delete group", "group", id, "err", err)
		return kerr.CoordinatorNotAvailable
	}
	g.Kill(c.b.now(), kerr.GroupIDNotFound)
	g.TakeOutbox()
	delete(c.groups, id)
	delete(c.books, g)
	return nil
}
