package checker

import "fmt"

// transform is what the consume-transform-produce analysis needs, gathered before the
// parallel analyses: for each input value id, how many outputs of it were read, and the
// first two of them for examples.
type transform struct {
	on      bool    // the run is a transform run
	isOut   []bool  // by value id: the value is an output
	outputs []int32 // by input value id: outputs read
	first   [][2]int32
}

// transformOutputs counts the outputs read per input. It runs before the parallel analyses.
func (c *checker) transformOutputs() *transform {
	tf := &transform{on: c.run != nil && c.run.Params["consumer_mode"] == "transform"}
	n := c.vals.len()
	for id := range n {
		v := c.vals.at(int32(id))
		if v.flags&flOutput == 0 {
			continue
		}
		if tf.isOut == nil {
			tf.on = true
			tf.isOut, tf.outputs, tf.first = make([]bool, n), make([]int32, n), make([][2]int32, n)
		}
		tf.isOut[id] = true
		c.stats.Outputs++
		if v.readPart < 0 || c.txnAborted(v) {
			continue
		}
		k := int32(1)
		if v.flags&flDuplicate != 0 {
			k = 2
		}
		if cnt := tf.outputs[v.in]; cnt < 2 {
			tf.first[v.in][cnt] = int32(id)
			if k == 2 {
				tf.first[v.in][1] = int32(id)
			}
		}
		tf.outputs[v.in] += k
		c.stats.OutputsRead += int64(k)
	}
	if tf.on && tf.isOut == nil {
		tf.isOut, tf.outputs, tf.first = make([]bool, n), make([]int32, n), make([][2]int32, n)
	}
	return tf
}

// exactlyOnceOutputs reports inputs missing from the output below the committed offsets
// and inputs with more than one output (MissingOutput, DuplicateOutput).
func (c *checker) exactlyOnceOutputs(tf *transform) {
	if !tf.on {
		return
	}
	for i := range tf.outputs {
		id := int32(i)
		if tf.isOut[id] {
			continue
		}
		v := c.vals.at(id)
		pid, off := v.readPart, v.readOffset
		if pid < 0 {
			pid, off = v.ackPart, v.ackOffset
		}
		switch n := tf.outputs[id]; {
		case n > 1:
			ex := Example{Value: c.vals.name(id), Start: v.invoke, Process: int(v.proc)}
			if pid >= 0 {
				p := c.parts[pid]
				ex.Topic, ex.Partition, ex.Offsets = p.topic, p.partition, []int64{off}
			}
			a, b := tf.first[id][0], tf.first[id][1]
			ex.End = max(c.vals.at(a).firstRead, c.vals.at(b).firstRead)
			c.an.add(DuplicateOutput, ex.Start, ex.End, func() Example {
				ex.Detail = fmt.Sprintf("%d outputs, among them %q and %q", n, c.vals.name(a), c.vals.name(b))
				return ex
			})
		case n == 0 && pid >= 0 && off >= c.parts[pid].maxCommitted && c.exists(id):
			c.stats.Untransformed++
		case n == 0 && pid >= 0 && off >= 0 && c.exists(id):
			p := c.parts[pid]
			c.an.add(MissingOutput, v.invoke, p.commitTime, func() Example {
				return Example{Value: c.vals.name(id), Topic: p.topic, Partition: p.partition, Offsets: []int64{off, p.maxCommitted},
					Start: v.invoke, End: p.commitTime, Process: int(p.commitProc),
					Detail: fmt.Sprintf("input committed past (up to %d), no output of it read", p.maxCommitted)}
			})
		}
	}
}
