package broker

// ListGroups (key 16), versions 0-5.
//
// Behaviour: lists the groups this broker coordinates with their protocol type, their state
// (v4+, filtered by StatesFilter, case-insensitively as Kafka does) and their type (v5+,
// always "classic"; TypesFilter keeps them when it names "classic" or is empty).

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListGroups(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.ListGroupsRequest)
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	co := c.b.groups
	if err := co.ensureReady(); err != nil {
		resp.ErrorCode = err.Code
		return resp, nil
	}
	match := func(filter []string, v string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
	}
	if !match(r.TypesFilter, "classic") {
		return resp, nil
	}
	co.mu.Lock()
	ids := sortedKeys(co.groups)
	for _, id := range ids {
		g := co.groups[id]
		if g == nil || !match(r.StatesFilter, g.State.String()) {
			continue
		}
		sg := kmsg.NewListGroupsResponseGroup()
		sg.Group, sg.ProtocolType, sg.GroupState, sg.GroupType = id, g.ProtocolType, g.State.String(), "classic"
		resp.Groups = append(resp.Groups, sg)
	}
	co.mu.Unlock()
	return resp, nil
}
