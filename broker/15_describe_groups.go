package broker

// DescribeGroups (key 15), versions 0-5.
//
// Behaviour: state, protocol type, and members with client id and host; in Stable the
// protocol and each member's metadata and assignment too (other states report the protocol as
// "" and members without metadata, as Kafka does). An unknown group is described as Dead with
// no error (v0-5). Authorized operations are not computed.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/group"
)

func handleDescribeGroups(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.DescribeGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	co := c.b.groups
	for _, id := range r.Groups {
		sg := kmsg.NewDescribeGroupsResponseGroup()
		sg.Group = id
		sg.AuthorizedOperations = notAuthorizedOps
		sg.State = group.Dead.String()
		if err := co.ensureReady(); err != nil {
			sg.ErrorCode = err.Code
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		co.mu.Lock()
		g, err := co.lookup(id, false)
		switch {
		case err != nil:
			sg.ErrorCode = err.Code
		case g != nil:
			sg.State = g.State.String()
			sg.ProtocolType = g.ProtocolType
			stable := g.State == group.Stable
			if stable {
				sg.Protocol = g.Protocol
			}
			for _, mid := range g.MemberIDs() {
				m := g.Members[mid]
				sm := kmsg.NewDescribeGroupsResponseGroupMember()
				sm.MemberID, sm.ClientID, sm.ClientHost = m.ID, m.ClientID, m.ClientHost
				if m.InstanceID != "" {
					inst := m.InstanceID
					sm.InstanceID = &inst
				}
				sm.ProtocolMetadata, sm.MemberAssignment = []byte{}, []byte{}
				if stable {
					sm.ProtocolMetadata = m.Metadata(g.Protocol)
					sm.MemberAssignment = m.Assignment
				}
				sg.Members = append(sg.Members, sm)
			}
		}
		co.mu.Unlock()
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}
