// Command compat-sarama is the sarama driver of kbroker's compat matrix: one JSON request per
// line on stdin, one JSON reply per line on stdout (see compat/session.py); logs go to stderr.
//
// It is built offline against Debian's packages (golang-go, golang-github-shopify-sarama-dev,
// sarama 1.22) in GOPATH mode by scripts/install-compat-clients. The config claims Kafka 2.1,
// the newest protocol level sarama 1.22 knows well: Produce v3, Fetch v4, Metadata v5.
// sarama 1.22 has no explicit commit: group members mark messages and its offset manager
// commits every Consumer.Offsets.CommitInterval (100 ms here) and when a session ends.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

// Set at build time (-ldflags "-X main.saramaVersion=...") from the Debian package's version.
var saramaVersion = "unknown"

const commitInterval = 100 * time.Millisecond

// Record is a record in the protocol's JSON shape; []byte travels as base64, nil as null.
type Record struct {
	Partition *int32       `json:"partition"`
	Offset    int64        `json:"offset"`
	Key       []byte       `json:"key"`
	Value     []byte       `json:"value"`
	Headers   [][2]*string `json:"headers"` // [name, base64 value or null]
	Timestamp *int64       `json:"timestamp"`
	Member    *int         `json:"member,omitempty"`
}

// Request holds the arguments of every op; each op reads the ones it needs.
type Request struct {
	Op              string            `json:"op"`
	Bootstrap       string            `json:"bootstrap"`
	ClientID        string            `json:"client_id"`
	TimeoutMs       int64             `json:"timeout_ms"`
	Topic           string            `json:"topic"`
	Records         []Record          `json:"records"`
	Compression     string            `json:"compression"`
	Idempotent      bool              `json:"idempotent"`
	PartitionsRaw   json.RawMessage   `json:"partitions"` // a list, or a count (create_topic)
	Partitions      []int32           `json:"-"`
	Count           int               `json:"count"`
	FromTimestamp   *int64            `json:"from_timestamp"`
	Isolation       string            `json:"isolation"`
	Partition       int32             `json:"partition"`
	Timestamp       int64             `json:"timestamp"`
	Group           string            `json:"group"`
	Members         int               `json:"members"`
	NumPartitions   int32             `json:"-"`
	Configs         map[string]string `json:"configs"`
	Names           []string          `json:"names"`
	Offset          int64             `json:"offset"`
	TransactionalID string            `json:"transactional_id"`
}

type member struct {
	group    sarama.ConsumerGroup
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	assigned []int32
}

type driver struct {
	brokers  []string
	clientID string
	timeout  time.Duration
	members  []*member
	records  chan Record
}

var codecs = map[string]sarama.CompressionCodec{
	"none":   sarama.CompressionNone,
	"gzip":   sarama.CompressionGZIP,
	"snappy": sarama.CompressionSnappy,
	"lz4":    sarama.CompressionLZ4,
	"zstd":   sarama.CompressionZSTD,
}

func (d *driver) config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_1_0_0
	c.ClientID = d.clientID
	c.Net.DialTimeout = d.timeout
	c.Net.ReadTimeout = d.timeout
	c.Metadata.Retry.Max = 3
	c.Consumer.MaxWaitTime = 20 * time.Millisecond
	return c
}

func bytesOf(text *string) []byte {
	if text == nil {
		return nil
	}
	return []byte(*text)
}

func decodeHeaders(r *Record) ([]sarama.RecordHeader, error) {
	var out []sarama.RecordHeader
	for _, h := range r.Headers {
		var value []byte
		if h[1] != nil {
			decoded, err := base64.StdEncoding.DecodeString(*h[1])
			if err != nil {
				return nil, err
			}
			value = decoded
		}
		out = append(out, sarama.RecordHeader{Key: []byte(*h[0]), Value: value})
	}
	return out, nil
}

func recordOut(msg *sarama.ConsumerMessage, memberIndex *int) Record {
	partition := msg.Partition
	ts := msg.Timestamp.UnixNano() / int64(time.Millisecond)
	r := Record{Partition: &partition, Offset: msg.Offset, Key: msg.Key, Value: msg.Value, Timestamp: &ts, Member: memberIndex}
	r.Headers = [][2]*string{}
	for _, h := range msg.Headers {
		key := string(h.Key)
		var value *string
		if h.Value != nil {
			text := base64.StdEncoding.EncodeToString(h.Value)
			value = &text
		}
		r.Headers = append(r.Headers, [2]*string{&key, value})
	}
	return r
}

// ------------------------------------------------------------------------------ produce

func (d *driver) produce(req *Request) (interface{}, error) {
	c := d.config()
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Compression = codecs[req.Compression]
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.MaxMessageBytes = 1000000
	if req.Idempotent {
		c.Producer.Idempotent = true
		c.Net.MaxOpenRequests = 1
	}
	producer, err := sarama.NewSyncProducer(d.brokers, c)
	if err != nil {
		return nil, err
	}
	defer producer.Close()
	messages := make([]*sarama.ProducerMessage, len(req.Records))
	for i := range req.Records {
		r := &req.Records[i]
		headers, err := decodeHeaders(r)
		if err != nil {
			return nil, err
		}
		m := &sarama.ProducerMessage{Topic: req.Topic, Headers: headers}
		if r.Key != nil {
			m.Key = sarama.ByteEncoder(r.Key)
		}
		if r.Value != nil {
			m.Value = sarama.ByteEncoder(r.Value)
		}
		if r.Partition != nil {
			m.Partition = *r.Partition
		}
		if r.Timestamp != nil {
			m.Timestamp = time.Unix(0, *r.Timestamp*int64(time.Millisecond))
		}
		messages[i] = m
	}
	if err := producer.SendMessages(messages); err != nil {
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			return nil, perrs[0].Err
		}
		return nil, err
	}
	offsets := make([][2]int64, len(messages))
	for i, m := range messages {
		offsets[i] = [2]int64{int64(m.Partition), m.Offset}
	}
	return map[string]interface{}{"offsets": offsets}, nil
}

// ------------------------------------------------------------------------------ consume

func (d *driver) consume(req *Request) (interface{}, error) {
	c := d.config()
	if req.Isolation == "read_committed" {
		c.Consumer.IsolationLevel = sarama.ReadCommitted
	}
	client, err := sarama.NewClient(d.brokers, c)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	out := make(chan Record, req.Count+16)
	done := make(chan struct{})
	var readers sync.WaitGroup
	var children []sarama.PartitionConsumer
	defer func() {
		// Close every partition consumer at once: one by one, each waits out a fetch.
		close(done)
		for _, pc := range children {
			pc.AsyncClose()
		}
		readers.Wait()
	}()
	for _, p := range req.Partitions {
		start := sarama.OffsetOldest
		if req.FromTimestamp != nil {
			if start, err = client.GetOffset(req.Topic, p, *req.FromTimestamp); err != nil {
				return nil, err
			}
			if start < 0 {
				start = sarama.OffsetNewest
			}
		}
		pc, err := consumer.ConsumePartition(req.Topic, p, start)
		if err != nil {
			return nil, err
		}
		children = append(children, pc)
		readers.Add(1)
		go func() {
			defer readers.Done()
			for msg := range pc.Messages() {
				select {
				case out <- recordOut(msg, nil):
				case <-done:
				}
			}
		}()
	}
	got := []Record{}
	deadline := time.After(time.Duration(req.TimeoutMs) * time.Millisecond)
	for len(got) < req.Count {
		select {
		case r := <-out:
			got = append(got, r)
		case <-deadline:
			return map[string]interface{}{"records": got}, nil
		}
	}
	return map[string]interface{}{"records": got}, nil
}

func (d *driver) offsetForTime(req *Request) (interface{}, error) {
	client, err := sarama.NewClient(d.brokers, d.config())
	if err != nil {
		return nil, err
	}
	defer client.Close()
	offset, err := client.GetOffset(req.Topic, req.Partition, req.Timestamp)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return map[string]interface{}{"offset": nil}, nil
	}
	return map[string]interface{}{"offset": offset}, nil
}

// ------------------------------------------------------------------------------ groups

type handler struct {
	m     *member
	index int
	out   chan Record
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	h.m.assigned = nil
	for _, parts := range s.Claims() {
		h.m.assigned = append(h.m.assigned, parts...)
	}
	sort.Slice(h.m.assigned, func(i, j int) bool { return h.m.assigned[i] < h.m.assigned[j] })
	return nil
}

func (h *handler) Cleanup(sarama.ConsumerGroupSession) error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	h.m.assigned = nil
	return nil
}

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		index := h.index
		h.out <- recordOut(msg, &index)
		s.MarkMessage(msg, "")
	}
	return nil
}

func (d *driver) groupJoin(req *Request) (interface{}, error) {
	c := d.config()
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.CommitInterval = commitInterval
	c.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	if d.records == nil {
		d.records = make(chan Record, 100000)
	}
	for i := 0; i < req.Members; i++ {
		group, err := sarama.NewConsumerGroup(d.brokers, req.Group, c)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		m := &member{group: group, cancel: cancel, done: make(chan struct{})}
		h := &handler{m: m, index: i, out: d.records}
		go func() {
			defer close(m.done)
			for ctx.Err() == nil {
				if err := group.Consume(ctx, []string{req.Topic}, h); err != nil {
					log.Printf("member %d: %v", h.index, err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
		d.members = append(d.members, m)
	}
	client, err := sarama.NewClient(d.brokers, d.config())
	if err != nil {
		return nil, err
	}
	defer client.Close()
	every, err := client.Partitions(req.Topic)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Duration(req.TimeoutMs) * time.Millisecond)
	var owned [][]int32
	for time.Now().Before(deadline) {
		owned = nil
		var all []int32
		complete := true
		for _, m := range d.members {
			m.mu.Lock()
			mine := append([]int32{}, m.assigned...)
			m.mu.Unlock()
			complete = complete && len(mine) > 0
			owned = append(owned, mine)
			all = append(all, mine...)
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		if complete && fmt.Sprint(all) == fmt.Sprint(every) {
			return map[string]interface{}{"assignments": owned}, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("group not stable: assignments %v", owned)
}

func (d *driver) groupConsume(req *Request) (interface{}, error) {
	got := []Record{}
	deadline := time.After(time.Duration(req.TimeoutMs) * time.Millisecond)
	for len(got) < req.Count {
		select {
		case r := <-d.records:
			got = append(got, r)
		case <-deadline:
			return map[string]interface{}{"records": got}, nil
		}
	}
	return map[string]interface{}{"records": got}, nil
}

func (d *driver) groupCommit(*Request) (interface{}, error) {
	time.Sleep(5 * commitInterval) // marked offsets are committed every commitInterval
	return map[string]interface{}{}, nil
}

func (d *driver) groupClose(*Request) (interface{}, error) {
	for _, m := range d.members {
		m.cancel()
	}
	var firstErr error
	for _, m := range d.members {
		if err := m.group.Close(); err != nil && firstErr == nil {
			firstErr = err
		}
		<-m.done
	}
	d.members = nil
	return map[string]interface{}{}, firstErr
}

// ------------------------------------------------------------------------------ admin

func (d *driver) admin() (sarama.ClusterAdmin, error) {
	return sarama.NewClusterAdmin(d.brokers, d.config())
}

func (d *driver) withAdmin(fn func(sarama.ClusterAdmin) (interface{}, error)) (interface{}, error) {
	admin, err := d.admin()
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	return fn(admin)
}

func ptrs(in map[string]string) map[string]*string {
	out := map[string]*string{}
	for k, v := range in {
		value := v
		out[k] = &value
	}
	return out
}

func (d *driver) createTopic(req *Request) (interface{}, error) {
	return d.withAdmin(func(a sarama.ClusterAdmin) (interface{}, error) {
		detail := &sarama.TopicDetail{NumPartitions: req.NumPartitions, ReplicationFactor: 1, ConfigEntries: ptrs(req.Configs)}
		return map[string]interface{}{}, a.CreateTopic(req.Topic, detail, false)
	})
}

func (d *driver) describeTopic(req *Request) (interface{}, error) {
	return d.withAdmin(func(a sarama.ClusterAdmin) (interface{}, error) {
		topics, err := a.DescribeTopics([]string{req.Topic})
		if err != nil {
			return nil, err
		}
		if topics[0].Err != sarama.ErrNoError {
			return nil, topics[0].Err
		}
		return map[string]interface{}{"partitions": len(topics[0].Partitions)}, nil
	})
}

func (d *driver) describeConfigs(req *Request) (interface{}, error) {
	return d.withAdmin(func(a sarama.ClusterAdmin) (interface{}, error) {
		entries, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: req.Topic, ConfigNames: req.Names})
		if err != nil {
			return nil, err
		}
		configs := map[string]string{}
		for _, e := range entries {
			configs[e.Name] = e.Value
		}
		return map[string]interface{}{"configs": configs}, nil
	})
}

func (d *driver) alterConfigs(req *Request) (interface{}, error) {
	return d.withAdmin(func(a sarama.ClusterAdmin) (interface{}, error) {
		return map[string]interface{}{}, a.AlterConfig(sarama.TopicResource, req.Topic, ptrs(req.Configs), false)
	})
}

func (d *driver) createPartitions(req *Request) (interface{}, error) {
	return d.withAdmin(func(a sarama.ClusterAdmin) (interface{}, error) {
		return map[string]interface{}{}, a.CreatePartitions(req.Topic, int32(req.Count), nil, false)
	})
}

func (d *driver) deleteRecords(req *Request) (interface{}, error) {
	return d.withAdmin(func(a sarama.ClusterAdmin) (interface{}, error) {
		err := a.DeleteRecords(req.Topic, map[int32]int64{req.Partition: req.Offset})
		return map[string]interface{}{"low_watermark": nil}, err // sarama does not report it
	})
}

func (d *driver) deleteTopic(req *Request) (interface{}, error) {
	return d.withAdmin(func(a sarama.ClusterAdmin) (interface{}, error) {
		return map[string]interface{}{}, a.DeleteTopic(req.Topic)
	})
}

func (d *driver) listGroups(*Request) (interface{}, error) {
	return d.withAdmin(func(a sarama.ClusterAdmin) (interface{}, error) {
		groups, err := a.ListConsumerGroups()
		if err != nil {
			return nil, err
		}
		names := []string{}
		for name := range groups {
			names = append(names, name)
		}
		return map[string]interface{}{"groups": names}, nil
	})
}

func (d *driver) describeGroup(req *Request) (interface{}, error) {
	return d.withAdmin(func(a sarama.ClusterAdmin) (interface{}, error) {
		groups, err := a.DescribeConsumerGroups([]string{req.Group})
		if err != nil {
			return nil, err
		}
		if groups[0].Err != sarama.ErrNoError {
			return nil, groups[0].Err
		}
		return map[string]interface{}{"state": groups[0].State, "members": len(groups[0].Members)}, nil
	})
}

// ------------------------------------------------------------------------------ main loop

func (d *driver) dispatch(req *Request) (interface{}, error) {
	switch req.Op {
	case "version":
		return map[string]interface{}{"version": "sarama " + saramaVersion + " (Debian's)"}, nil
	case "init":
		d.brokers = strings.Split(req.Bootstrap, ",")
		d.clientID = req.ClientID
		d.timeout = time.Duration(req.TimeoutMs) * time.Millisecond
		return map[string]interface{}{}, nil
	case "produce":
		return d.produce(req)
	case "consume":
		return d.consume(req)
	case "offset_for_time":
		return d.offsetForTime(req)
	case "group_join":
		return d.groupJoin(req)
	case "group_consume":
		return d.groupConsume(req)
	case "group_commit":
		return d.groupCommit(req)
	case "group_close":
		return d.groupClose(req)
	case "create_topic":
		return d.createTopic(req)
	case "describe_topic":
		return d.describeTopic(req)
	case "describe_configs":
		return d.describeConfigs(req)
	case "alter_configs":
		return d.alterConfigs(req)
	case "create_partitions":
		return d.createPartitions(req)
	case "delete_records":
		return d.deleteRecords(req)
	case "delete_topic":
		return d.deleteTopic(req)
	case "list_groups":
		return d.listGroups(req)
	case "describe_group":
		return d.describeGroup(req)
	}
	return nil, fmt.Errorf("this driver has no op %q", req.Op)
}

func errorCode(err error) interface{} {
	var kerr sarama.KError
	if errors.As(err, &kerr) {
		return fmt.Sprintf("KError%d", int16(kerr))
	}
	return nil
}

func main() {
	log.SetOutput(os.Stderr)
	sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
	d := &driver{timeout: 30 * time.Second}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req Request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			out.Encode(map[string]interface{}{"ok": false, "error": err.Error(), "code": nil})
			continue
		}
		if len(req.PartitionsRaw) > 0 {
			target := interface{}(&req.Partitions)
			if req.Op == "create_topic" {
				target = &req.NumPartitions
			}
			if err := json.Unmarshal(req.PartitionsRaw, target); err != nil {
				out.Encode(map[string]interface{}{"ok": false, "error": err.Error(), "code": nil})
				continue
			}
		}
		if req.Op == "exit" {
			for _, m := range d.members {
				m.cancel()
				m.group.Close()
			}
			out.Encode(map[string]interface{}{"ok": true})
			return
		}
		result, err := d.dispatch(&req)
		if err != nil {
			log.Printf("%s: %v", req.Op, err)
			out.Encode(map[string]interface{}{"ok": false, "error": err.Error(), "code": errorCode(err)})
			continue
		}
		out.Encode(map[string]interface{}{"ok": true, "result": result})
	}
}
