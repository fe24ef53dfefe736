package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// JoinRequest is a JoinGroup for one member.
type JoinRequest struct {
	// MemberID is "" for a first join.
	MemberID                         string
	InstanceID                       string
	ClientID                         string
	ClientHost                       string
	ProtocolType                     string
	Protocols                        []Protocol
	SessionTimeout, RebalanceTimeout time.Duration
	// RequireKnownMemberID (JoinGroup v4+) makes a dynamic member's first join fail with
	// MEMBER_ID_REQUIRED and a member id to join with.
	RequireKnownMemberID bool
	// SupportsSkipAssignment (JoinGroup v9+) lets a static leader rejoining a Stable group
	// keep the current assignment instead of forcing a rebalance.
	SupportsSkipAssignment bool
	// NewMemberID is the id a first join gets (the caller makes it unique).
	NewMemberID string
}

// JoinedMember is one member as the leader's JoinGroup response lists it.
type JoinedMember struct {
	ID         string
	InstanceID string
	Metadata   []byte
}

// JoinResult is a JoinGroup response.
type JoinResult struct {
	Err            *kerr.Error
	Generation     int32
	ProtocolType   string
	Protocol       string
	Leader         string
	MemberID       string
	SkipAssignment bool
	// Members is set for the leader only.
	Members []JoinedMember
}

// SyncRequest is a SyncGroup.
type SyncRequest struct {
	MemberID   string
	InstanceID string
	Generation int32
	// ProtocolType and Protocol are checked when not nil (SyncGroup v5+).
	ProtocolType, Protocol *string
	// Assignments is the leader's assignment by member id.
	Assignments map[string][]byte
}

// SyncResult is a SyncGroup response.
type SyncResult struct {
	Err          *kerr.Error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

func fail(reply func(JoinResult), err *kerr.Error, memberID string) {
	reply(JoinResult{Err: err, Generation: -1, MemberID: memberID})
}

// Join handles a JoinGroup. reply is called exactly once: at once for errors and immediate
// answers, or through the outbox when the rebalance completes.
func (g *Group) Join(now time.Time, req JoinRequest, reply func(JoinResult)) {
	if g.State == Dead {
		fail(reply, kerr.CoordinatorNotAvailable, req.MemberID)
		return
	}
	if !g.supports(req.ProtocolType, req.Protocols) {
		fail(reply, kerr.InconsistentGroupProtocol, req.MemberID)
		return
	}
	if req.MemberID == "" {
		g.joinUnknown(now, req, reply)
		return
	}
	g.joinKnown(now, req, reply)
}

// supports reports whether a member with these protocols may join: the protocol type must
// match and at least one protocol must be supported by every member.
func (g *Group) supports(protocolType string, protocols []Protocol) bool {
	if protocolType == "" || len(protocols) == 0 {
		return false
	}
	if len(g.Members) == 0 {
		return true
	}
	if protocolType != g.ProtocolType {
		return false
	}
	for _, p := range protocols {
		all := true
		for _, m := range g.Members {
			if !hasProtocol(m, p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func hasProtocol(m *Member, name string) bool {
	for _, p := range m.Protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (g *Group) joinUnknown(now time.Time, req JoinRequest, reply func(JoinResult)) {
	id := req.NewMemberID
	if req.InstanceID != "" {
		if old, ok := g.static[req.InstanceID]; ok {
			g.replaceStatic(now, old, id, req, reply)
			return
		}
		g.addMember(now, id, req, reply)
		return
	}
	if req.RequireKnownMemberID {
		g.pending[id] = now.Add(req.SessionTimeout)
		reply(JoinResult{Err: kerr.MemberIDRequired, Generation: -1, MemberID: id})
		return
	}
	g.addMember(now, id, req, reply)
}

// replaceStatic gives a restarted static member a new member id. The old id is fenced. In a
// Stable group whose selected protocol stays the same this causes no rebalance: the member gets the current
// generation and keeps its assignment.
func (g *Group) replaceStatic(now time.Time, oldID, newID string, req JoinRequest, reply func(JoinResult)) {
	m := g.Members[oldID]
	g.deliverJoin(m, JoinResult{Err: kerr.FencedInstanceID, Generation: -1, MemberID: oldID})
	g.deliverSync(m, SyncResult{Err: kerr.FencedInstanceID})
	delete(g.Members, oldID)
	m.ID = newID
	g.Members[newID] = m
	g.static[req.InstanceID] = newID
	wasLeader := g.Leader == oldID
	if wasLeader {
		g.Leader = newID
	}
	g.metaVersion++
	oldProtocols := m.Protocols
	m.Protocols = req.Protocols
	// As in Kafka, only a change of the group's selected protocol forces a rebalance; the
	// subscription metadata (owned partitions, generation) may differ after a restart.
	if g.State == Stable && g.selectProtocol() == g.Protocol && (!wasLeader || req.SupportsSkipAssignment) {
		m.heartbeatAt = now
		m.ClientID, m.ClientHost = req.ClientID, req.ClientHost
		m.SessionTimeout, m.RebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
		res := g.joinResult(m)
		if wasLeader {
			res.Members = g.joinedMembers()
			res.SkipAssignment = true
		}
		reply(res)
		return
	}
	m.Protocols = oldProtocols
	req.MemberID = newID
	g.joinKnown(now, req, reply)
}

func sameProtocols(a, b []Protocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Metadata) != string(b[i].Metadata) {
			return false
		}
	}
	return true
}

func (g *Group) addMember(now time.Time, id string, req JoinRequest, reply func(JoinResult)) {
	g.seq++
	m := &Member{ID: id, InstanceID: req.InstanceID, ClientID: req.ClientID, ClientHost: req.ClientHost,
		SessionTimeout: req.SessionTimeout, RebalanceTimeout: req.RebalanceTimeout, Protocols: req.Protocols,
		heartbeatAt: now, joinReply: reply, joinSeq: g.seq}
	if len(g.Members) == 0 {
		g.ProtocolType = req.ProtocolType
	}
	g.Members[id] = m
	if req.InstanceID != "" {
		g.static[req.InstanceID] = id
	}
	if g.State == PreparingRebalance {
		if g.initialDelay {
			g.joinedInDelay = true
		}
		g.tryCompleteJoin(now)
		return
	}
	g.prepareRebalance(now)
}

func (g *Group) joinKnown(now time.Time, req JoinRequest, reply func(JoinResult)) {
	id := req.MemberID
	if req.InstanceID != "" {
		cur, ok := g.static[req.InstanceID]
		if !ok {
			fail(reply, kerr.UnknownMemberID, id)
			return
		}
		if cur != id {
			fail(reply, kerr.FencedInstanceID, id)
			return
		}
	}
	if _, ok := g.pending[id]; ok {
		delete(g.pending, id)
		g.addMember(now, id, req, reply)
		return
	}
	m := g.Members[id]
	if m == nil {
		fail(reply, kerr.UnknownMemberID, id)
		return
	}
	m.heartbeatAt = now
	m.ClientID, m.ClientHost = req.ClientID, req.ClientHost
	m.SessionTimeout, m.RebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	switch g.State {
	case PreparingRebalance:
		m.Protocols = req.Protocols
		g.deliverJoin(m, JoinResult{Err: kerr.RebalanceInProgress, Generation: -1, MemberID: id})
		m.joinReply = reply
		g.tryCompleteJoin(now)
	case CompletingRebalance:
		if sameProtocols(m.Protocols, req.Protocols) {
			// The member lost the join response: answer again.
			res := g.joinResult(m)
			if id == g.Leader {
				res.Members = g.joinedMembers()
			}
			reply(res)
			return
		}
		m.Protocols = req.Protocols
		m.joinReply = reply
		g.prepareRebalance(now)
	case Stable:
		if id != g.Leader && sameProtocols(m.Protocols, req.Protocols) {
			reply(g.joinResult(m))
			return
		}
		m.Protocols = req.Protocols
		m.joinReply = reply
		g.prepareRebalance(now)
	default:
		fail(reply, kerr.UnknownMemberID, id)
	}
}

func (g *Group) joinResult(m *Member) JoinResult {
	return JoinResult{Generation: g.Generation, ProtocolType: g.ProtocolType, Protocol: g.Protocol, Leader: g.Leader, MemberID: m.ID}
}

func (g *Group) joinedMembers() []JoinedMember {
	var out []JoinedMember
	for _, id := range g.MemberIDs() {
		m := g.Members[id]
		out = append(out, JoinedMember{ID: id, InstanceID: m.InstanceID, Metadata: m.Metadata(g.Protocol)})
	}
	return out
}

// prepareRebalance starts a rebalance: members must rejoin within the rebalance timeout. The
// first rebalance of an empty group waits group.initial.rebalance.delay.ms for more joiners.
func (g *Group) prepareRebalance(now time.Time) {
	if g.State == CompletingRebalance {
		for _, m := range g.Members {
			m.Assignment = nil
			g.deliverSync(m, SyncResult{Err: kerr.RebalanceInProgress})
		}
	}
	timeout := g.maxRebalanceTimeout()
	if g.State == Empty {
		g.initialDelay = true
		g.joinedInDelay = false
		g.initialCap = now.Add(timeout)
		g.joinDeadline = now.Add(min(g.cfg.InitialRebalanceDelay, timeout))
	} else {
		g.initialDelay = false
		g.joinDeadline = now.Add(timeout)
	}
	g.setState(PreparingRebalance, now)
	g.tryCompleteJoin(now)
}

// tryCompleteJoin completes the rebalance once every member has rejoined, except during the
// initial delay, which always runs its course (Tick ends it).
func (g *Group) tryCompleteJoin(now time.Time) {
	if g.State != PreparingRebalance || len(g.pending) > 0 {
		return
	}
	if g.initialDelay {
		return // only Tick ends the initial delay
	}
	for _, m := range g.Members {
		if m.joinReply == nil {
			return
		}
	}
	g.completeJoin(now)
}

// completeJoin ends PreparingRebalance: dynamic members that did not rejoin are removed, the
// generation is bumped, a protocol and leader are chosen and every joined member answered.
func (g *Group) completeJoin(now time.Time) {
	g.initialDelay = false
	for id, m := range g.Members {
		if m.joinReply == nil && m.InstanceID == "" {
			g.dropMember(m)
			delete(g.Members, id)
		}
	}
	g.Generation++
	g.Rebalances++
	g.metaVersion++
	if len(g.Members) == 0 {
		g.Protocol, g.Leader = "", ""
		g.setState(Empty, now)
		return
	}
	g.Protocol = g.selectProtocol()
	if m := g.Members[g.Leader]; m == nil || m.joinReply == nil {
		g.Leader = ""
		for _, id := range g.MemberIDs() {
			if g.Members[id].joinReply != nil {
				g.Leader = id
				break
			}
		}
	}
	g.setState(CompletingRebalance, now)
	for _, m := range g.Members {
		if m.joinReply == nil {
			continue
		}
		res := g.joinResult(m)
		if m.ID == g.Leader {
			res.Members = g.joinedMembers()
		}
		m.heartbeatAt = now
		g.deliverJoin(m, res)
	}
}

// selectProtocol picks, among the protocols every member supports, the one most members
// prefer (each votes for its first supported candidate); ties go to the first seen.
func (g *Group) selectProtocol() string {
	var candidates []string
	for _, id := range g.MemberIDs() {
		for _, p := range g.Members[id].Protocols {
			all := true
			for _, o := range g.Members {
				if !hasProtocol(o, p.Name) {
					all = false
					break
				}
			}
			if all && !contains(candidates, p.Name) {
				candidates = append(candidates, p.Name)
			}
		}
	}
	votes := map[string]int{}
	for _, m := range g.Members {
		for _, p := range m.Protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// dropMember answers a removed member's waiting requests with UNKNOWN_MEMBER_ID and unbinds
// its instance id.
func (g *Group) dropMember(m *Member) {
	g.deliverJoin(m, JoinResult{Err: kerr.UnknownMemberID, Generation: -1, MemberID: m.ID})
	g.deliverSync(m, SyncResult{Err: kerr.UnknownMemberID})
	if m.InstanceID != "" && g.static[m.InstanceID] == m.ID {
		delete(g.static, m.InstanceID)
	}
}

// removeMember removes a member (left or expired) and rebalances the rest.
func (g *Group) removeMember(now time.Time, m *Member) {
	g.dropMember(m)
	delete(g.Members, m.ID)
	if g.Leader == m.ID {
		g.Leader = ""
	}
	switch g.State {
	case Stable, CompletingRebalance:
		g.prepareRebalance(now)
	case PreparingRebalance:
		g.tryCompleteJoin(now)
	}
}

// Sync handles a SyncGroup. reply is called exactly once.
func (g *Group) Sync(now time.Time, req SyncRequest, reply func(SyncResult)) {
	m, err := g.validateMember(req.MemberID, req.InstanceID, req.Generation)
	if err != nil {
		reply(SyncResult{Err: err})
		return
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.ProtocolType) || (req.Protocol != nil && *req.Protocol != g.Protocol) {
		reply(SyncResult{Err: kerr.InconsistentGroupProtocol})
		return
	}
	switch g.State {
	case PreparingRebalance:
		reply(SyncResult{Err: kerr.RebalanceInProgress})
	case CompletingRebalance:
		m.heartbeatAt = now
		g.deliverSync(m, SyncResult{Err: kerr.RebalanceInProgress})
		m.syncReply = reply
		if m.ID != g.Leader {
			return
		}
		for id, o := range g.Members {
			o.Assignment = req.Assignments[id]
		}
		g.metaVersion++
		g.setState(Stable, now)
		for _, o := range g.Members {
			g.deliverSync(o, SyncResult{ProtocolType: g.ProtocolType, Protocol: g.Protocol, Assignment: o.Assignment})
		}
	case Stable:
		m.heartbeatAt = now
		reply(SyncResult{ProtocolType: g.ProtocolType, Protocol: g.Protocol, Assignment: m.Assignment})
	default:
		reply(SyncResult{Err: kerr.UnknownMemberID})
	}
}

// validateMember applies Kafka's checks, in Kafka's order: dead group, fenced static member,
// unknown member, wrong generation.
func (g *Group) validateMember(memberID, instanceID string, generation int32) (*Member, *kerr.Error) {
	if g.State == Dead {
		return nil, kerr.CoordinatorNotAvailable
	}
	if instanceID != "" {
		if cur, ok := g.static[instanceID]; ok && cur != memberID {
			return nil, kerr.FencedInstanceID
		}
	}
	m := g.Members[memberID]
	if m == nil {
		return nil, kerr.UnknownMemberID
	}
	if generation != g.Generation {
		return nil, kerr.IllegalGeneration
	}
	return m, nil
}

// Heartbeat handles a Heartbeat: it keeps the member's session alive and tells it whether a
// rebalance is under way.
func (g *Group) Heartbeat(now time.Time, memberID, instanceID string, generation int32) *kerr.Error {
	if g.State == Empty {
		return kerr.UnknownMemberID
	}
	m, err := g.validateMember(memberID, instanceID, generation)
	if err != nil {
		return err
	}
	m.heartbeatAt = now
	if g.State == PreparingRebalance {
		return kerr.RebalanceInProgress
	}
	return nil
}

// Leave removes a member (by member id, or by instance id when memberID is "").
func (g *Group) Leave(now time.Time, memberID, instanceID string) *kerr.Error {
	if g.State == Dead {
		return kerr.CoordinatorNotAvailable
	}
	if instanceID != "" {
		cur, ok := g.static[instanceID]
		if !ok {
			return kerr.UnknownMemberID
		}
		if memberID != "" && cur != memberID {
			return kerr.FencedInstanceID
		}
		memberID = cur
	}
	if _, ok := g.pending[memberID]; ok {
		delete(g.pending, memberID)
		g.tryCompleteJoin(now)
		return nil
	}
	m := g.Members[memberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	g.removeMember(now, m)
	return nil
}

// CheckCommit decides whether an OffsetCommit from this member and generation may be applied,
// as Kafka's classic coordinator does: a generation below 0 commits for an Empty group (the
// group only stores offsets); otherwise the member must be current. Commits are allowed while
// PreparingRebalance so members can commit before revoking partitions.
func (g *Group) CheckCommit(memberID, instanceID string, generation int32) *kerr.Error {
	switch {
	case g.State == Dead:
		return kerr.CoordinatorNotAvailable
	case generation < 0 && g.State == Empty:
		return nil
	case g.State == CompletingRebalance:
		return kerr.RebalanceInProgress
	}
	_, err := g.validateMember(memberID, instanceID, generation)
	return err
}

// Tick expires pending member ids and sessions and ends rebalances whose time is up.
func (g *Group) Tick(now time.Time) {
	for id, exp := range g.pending {
		if !now.Before(exp) {
			delete(g.pending, id)
			g.tryCompleteJoin(now)
		}
	}
	for _, id := range g.MemberIDs() {
		m := g.Members[id]
		if m == nil || m.joinReply != nil || m.syncReply != nil {
			continue
		}
		if now.Sub(m.heartbeatAt) > m.SessionTimeout {
			g.removeMember(now, m)
		}
	}
	if g.State != PreparingRebalance || now.Before(g.joinDeadline) {
		return
	}
	if g.initialDelay && g.joinedInDelay && g.cfg.InitialRebalanceDelay > 0 && now.Before(g.initialCap) {
		g.joinedInDelay = false
		g.joinDeadline = minTime(now.Add(g.cfg.InitialRebalanceDelay), g.initialCap)
		return
	}
	g.completeJoin(now)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
