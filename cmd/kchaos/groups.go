package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { commands = append(commands, newGroupsCmd) }

func newGroupsCmd() *cobra.Command {
	var (
		bootstrap  string
		timeout    time.Duration
		clientFile string
	)
	cmd := &cobra.Command{
		Use:   "groups list|describe GROUP",
		Short: "List consumer groups or describe one group's offsets and lag",
		Long: `groups talks to any Kafka-protocol broker. "list" prints every group's name, one a line.
"describe GROUP" prints, per partition the group committed or owns, the committed offset, the
log end offset (high watermark), the lag and the owning member, in the layout of
kafka-consumer-groups.sh --describe ("-" where there is no committed offset or owner).`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && args[0] == "list":
				return nil
			case len(args) == 2 && args[0] == "describe":
				return nil
			}
			return fmt.Errorf("groups: want 'list' or 'describe GROUP'")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			seeds, client, err := groupsClient(clientFile, bootstrap, cmd.Flags().Changed("bootstrap"))
			if err != nil {
				return err
			}
			cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, client.FranzOpts()...)...)
			if err != nil {
				return fmt.Errorf("groups: %w", err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if args[0] == "list" {
				return listGroups(ctx, cl, cmd.OutOrStdout())
			}
			return describeGroup(ctx, cl, args[1], cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&bootstrap, "bootstrap", "127.0.0.1:9092", "comma-separated broker addresses")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the brokers")
	cmd.Flags().StringVar(&clientFile, "client-config", "", "Kafka client properties file (security.protocol, ssl.*, sasl.*; bootstrap.servers when --bootstrap is not given)")
	return cmd
}

func listGroups(ctx context.Context, cl *kgo.Client, w io.Writer) error {
	req := kmsg.NewPtrListGroupsRequest()
	shards := cl.RequestSharded(ctx, req)
	var names []string
	for _, s := range shards {
		if s.Err != nil {
			return fmt.Errorf("groups: list: %w", s.Err)
		}
		resp := s.Resp.(*kmsg.ListGroupsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("groups: list: %w", err)
		}
		for _, g := range resp.Groups {
			names = append(names, g.Group)
		}
	}
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		fmt.Fprintln(w, n)
	}
	return nil
}

// groupRow is one line of describe.
type groupRow struct {
	topic                    string
	partition                int32
	committed, logEnd        int64 // -1: none
	consumer, host, clientID string
}

func describeGroup(ctx context.Context, cl *kgo.Client, groupID string, w io.Writer) error {
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.Groups = []string{groupID}
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("groups: describe %s: %w", groupID, err)
	}
	dg := dresp.Groups[0]
	if err := kerr.ErrorForCode(dg.ErrorCode); err != nil {
		return fmt.Errorf("groups: describe %s: %w", groupID, err)
	}
	rows := map[string]*groupRow{}
	key := func(t string, p int32) string { return t + "\x00" + strconv.Itoa(int(p)) }
	row := func(t string, p int32) *groupRow {
		r := rows[key(t, p)]
		if r == nil {
			r = &groupRow{topic: t, partition: p, committed: -1, logEnd: -1, consumer: "-", host: "-", clientID: "-"}
			rows[key(t, p)] = r
		}
		return r
	}
	if dg.ProtocolType == "consumer" {
		for _, m := range dg.Members {
			var a kmsg.ConsumerMemberAssignment
			if len(m.MemberAssignment) == 0 || a.ReadFrom(m.MemberAssignment) != nil {
				continue
			}
			for _, t := range a.Topics {
				for _, p := range t.Partitions {
					r := row(t.Topic, p)
					r.consumer, r.host, r.clientID = m.MemberID, m.ClientHost, m.ClientID
				}
			}
		}
	}
	freq := kmsg.NewPtrOffsetFetchRequest()
	freq.Group = groupID
	fresp, err := freq.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("groups: offsets of %s: %w", groupID, err)
	}
	if err := kerr.ErrorForCode(fresp.ErrorCode); err != nil {
		return fmt.Errorf("groups: offsets of %s: %w", groupID, err)
	}
	for _, t := range fresp.Topics {
		for _, p := range t.Partitions {
			if p.Offset >= 0 {
				row(t.Topic, p.Partition).committed = p.Offset
			}
		}
	}
	if err := fillLogEnds(ctx, cl, rows); err != nil {
		return err
	}
	list := make([]*groupRow, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	slices.SortFunc(list, func(a, b *groupRow) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.partition - b.partition)
	})
	if len(dg.Members) == 0 {
		fmt.Fprintf(w, "Consumer group '%s' has no active members.\n\n", groupID)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID")
	dash := func(n int64) string {
		if n < 0 {
			return "-"
		}
		return strconv.FormatInt(n, 10)
	}
	for _, r := range list {
		lag := int64(-1)
		if r.committed >= 0 && r.logEnd >= 0 {
			lag = max(0, r.logEnd-r.committed)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", groupID, r.topic, r.partition, dash(r.committed), dash(r.logEnd), dash(lag), r.consumer, r.host, r.clientID)
	}
	return tw.Flush()
}

// fillLogEnds sets each row's log end offset from ListOffsets (latest), sent to each leader.
func fillLogEnds(ctx context.Context, cl *kgo.Client, rows map[string]*groupRow) error {
	if len(rows) == 0 {
		return nil
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	byTopic := map[string][]int32{}
	for _, r := range rows {
		byTopic[r.topic] = append(byTopic[r.topic], r.partition)
	}
	for t, ps := range byTopic {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = t
		for _, p := range ps {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = p, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	for _, s := range cl.RequestSharded(ctx, req) {
		if s.Err != nil {
			return fmt.Errorf("groups: log end offsets: %w", s.Err)
		}
		for _, t := range s.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 {
					for _, r := range rows {
						if r.topic == t.Topic && r.partition == p.Partition {
							r.logEnd = p.Offset
						}
					}
				}
			}
		}
	}
	return nil
}
