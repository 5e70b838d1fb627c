package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// The serve protocol. Requests, one per line on stdin:
//
//	{"id": 1, "cmd": "insert", "params": {...}}
//
// Responses, one per line on stdout, in any order: {"id": 1, "ok": true, "result": ...} or
// {"id": 1, "ok": false, "error": "..."}. Events have no id: {"event": "work", ...} when a Go
// worker starts an attempt (with the args it decoded), {"event": "step", ...} for resumable
// steps, {"event": "ctx_done", ...} when a blocked job's context ends, {"event": "river", ...}
// for River's own subscription events, and {"event": "ready"} once serving. Job ids are
// strings (int64 in JSON numbers would lose precision in JavaScript).

var (
	outMu  sync.Mutex
	stdout = bufio.NewWriter(os.Stdout)
)

func emit(v any) {
	line, err := json.Marshal(v)
	if err != nil {
		line, _ = json.Marshal(map[string]string{"event": "emit_error", "error": err.Error()})
	}
	outMu.Lock()
	defer outMu.Unlock()
	_, _ = stdout.Write(line)
	_ = stdout.WriteByte('\n')
	_ = stdout.Flush()
}

func emitWork(job *rivertype.JobRow, decoded string, facts map[string]any) {
	emit(map[string]any{
		"event":      "work",
		"job":        wireJob(job),
		"decoded":    decoded,
		"facts":      facts,
		"at_unix_ns": strconv.FormatInt(time.Now().UnixNano(), 10),
	})
}

func emitStep(id int64, attempt int, step string, value any) {
	emit(map[string]any{"event": "step", "id": strconv.FormatInt(id, 10), "attempt": attempt, "step": step, "value": value})
}

// wire is a job row as the suite reads it.
type wire struct {
	ID           string      `json:"id"`
	State        string      `json:"state"`
	Attempt      int         `json:"attempt"`
	MaxAttempts  int         `json:"max_attempts"`
	AttemptedAt  *time.Time  `json:"attempted_at"`
	AttemptedBy  []string    `json:"attempted_by"`
	CreatedAt    time.Time   `json:"created_at"`
	FinalizedAt  *time.Time  `json:"finalized_at"`
	ScheduledAt  time.Time   `json:"scheduled_at"`
	Priority     int         `json:"priority"`
	Kind         string      `json:"kind"`
	Queue        string      `json:"queue"`
	Tags         []string    `json:"tags"`
	Args         string      `json:"args"`
	Metadata     string      `json:"metadata"`
	Errors       []wireError `json:"errors"`
	UniqueKey    *string     `json:"unique_key"`
	UniqueStates []string    `json:"unique_states"`
}

type wireError struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
	Trace   string    `json:"trace"`
}

func wireJob(job *rivertype.JobRow) *wire {
	if job == nil {
		return nil
	}
	w := &wire{
		ID:          strconv.FormatInt(job.ID, 10),
		State:       string(job.State),
		Attempt:     job.Attempt,
		MaxAttempts: job.MaxAttempts,
		AttemptedAt: job.AttemptedAt,
		AttemptedBy: job.AttemptedBy,
		CreatedAt:   job.CreatedAt,
		FinalizedAt: job.FinalizedAt,
		ScheduledAt: job.ScheduledAt,
		Priority:    job.Priority,
		Kind:        job.Kind,
		Queue:       job.Queue,
		Tags:        job.Tags,
		Args:        string(job.EncodedArgs),
		Metadata:    string(job.Metadata),
		Errors:      []wireError{},
	}
	for _, e := range job.Errors {
		w.Errors = append(w.Errors, wireError{At: e.At, Attempt: e.Attempt, Error: e.Error, Trace: e.Trace})
	}
	if job.UniqueKey != nil {
		key := hex.EncodeToString(job.UniqueKey)
		w.UniqueKey = &key
	}
	for _, s := range job.UniqueStates {
		w.UniqueStates = append(w.UniqueStates, string(s))
	}
	return w
}

type request struct {
	ID     int64           `json:"id"`
	Cmd    string          `json:"cmd"`
	Params json.RawMessage `json:"params"`
}

type server struct {
	pool   *pgxpool.Pool
	schema string
	logger *slog.Logger

	mu      sync.Mutex
	client  *river.Client[pgx.Tx]
	working bool
}

func runServe(args []string) int {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	databaseURL := flags.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL")
	schema := flags.String("schema", "", "schema of River's tables")
	if err := flags.Parse(args); err != nil {
		return fail(err)
	}
	ctx := context.Background()
	config, err := pgxpool.ParseConfig(*databaseURL)
	if err != nil {
		return fail(err)
	}
	config.MaxConns = 12
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
	s := &server{
		pool:   pool,
		schema: *schema,
		logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	// An insert-only client until `start` builds a working one.
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger:  s.logger,
		Schema:  s.schema,
		Workers: newWorkers(),
	})
	if err != nil {
		return fail(err)
	}
	s.client = client
	emit(map[string]string{"event": "ready"})

	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	var wg sync.WaitGroup
	for scanner.Scan() {
		var req request
		if err := json.Unmarshal(scanner.Bytes(), &req); err != nil {
			emit(map[string]any{"event": "protocol_error", "error": err.Error()})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			result, err := s.handle(ctx, req)
			if err != nil {
				emit(map[string]any{"id": req.ID, "ok": false, "error": err.Error()})
				return
			}
			emit(map[string]any{"id": req.ID, "ok": true, "result": result})
		}()
	}
	// stdin closed: the suite is done with us.
	wg.Wait()
	s.mu.Lock()
	working := s.working
	s.mu.Unlock()
	if working {
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = s.current().StopAndCancel(stopCtx)
	}
	return 0
}

func (s *server) current() *river.Client[pgx.Tx] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client
}

func (s *server) handle(ctx context.Context, req request) (any, error) {
	switch req.Cmd {
	case "start":
		return s.start(ctx, req.Params)
	case "stop":
		return s.stop(ctx, req.Params)
	case "insert":
		return s.insert(ctx, req.Params)
	case "insert_many":
		return s.insertMany(ctx, req.Params)
	case "get", "cancel", "retry", "delete":
		var p struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(req.Params, &p); err != nil {
			return nil, err
		}
		id, err := strconv.ParseInt(p.ID, 10, 64)
		if err != nil {
			return nil, err
		}
		client := s.current()
		calledAt := time.Now()
		var job *rivertype.JobRow
		switch req.Cmd {
		case "get":
			job, err = client.JobGet(ctx, id)
		case "cancel":
			job, err = client.JobCancel(ctx, id)
		case "retry":
			job, err = client.JobRetry(ctx, id)
		case "delete":
			job, err = client.JobDelete(ctx, id)
		}
		if err != nil {
			if errors.Is(err, river.ErrNotFound) {
				return map[string]any{"not_found": true}, nil
			}
			return nil, err
		}
		return map[string]any{"job": wireJob(job), "called_at_unix_ns": strconv.FormatInt(calledAt.UnixNano(), 10)}, nil
	case "queue_pause", "queue_resume", "queue_get":
		var p struct {
			Queue string `json:"queue"`
		}
		if err := json.Unmarshal(req.Params, &p); err != nil {
			return nil, err
		}
		client := s.current()
		switch req.Cmd {
		case "queue_pause":
			return map[string]any{}, client.QueuePause(ctx, p.Queue, nil)
		case "queue_resume":
			return map[string]any{}, client.QueueResume(ctx, p.Queue, nil)
		default:
			queue, err := client.QueueGet(ctx, p.Queue)
			if err != nil {
				return nil, err
			}
			return map[string]any{"name": queue.Name, "paused_at": queue.PausedAt, "metadata": string(queue.Metadata)}, nil
		}
	case "list":
		var p struct {
			Kinds []string `json:"kinds"`
		}
		if err := json.Unmarshal(req.Params, &p); err != nil {
			return nil, err
		}
		params := river.NewJobListParams().First(10_000)
		if len(p.Kinds) > 0 {
			params = params.Kinds(p.Kinds...)
		}
		res, err := s.current().JobList(ctx, params)
		if err != nil {
			return nil, err
		}
		jobs := []*wire{}
		for _, job := range res.Jobs {
			jobs = append(jobs, wireJob(job))
		}
		return map[string]any{"jobs": jobs}, nil
	}
	return nil, fmt.Errorf("unknown command %q", req.Cmd)
}

type startParams struct {
	ID                     string         `json:"id"`
	Queues                 map[string]int `json:"queues"`
	FetchCooldownMs        int            `json:"fetch_cooldown_ms"`
	FetchPollIntervalMs    int            `json:"fetch_poll_interval_ms"`
	JobTimeoutMs           int            `json:"job_timeout_ms"`
	RescueStuckJobsAfterMs int            `json:"rescue_stuck_jobs_after_ms"`
	RetryDelayMs           int            `json:"retry_delay_ms"`
	CompletedRetentionMs   int            `json:"completed_retention_ms"`
	DiscardedRetentionMs   int            `json:"discarded_retention_ms"`
	LeaderElectionDisabled bool           `json:"leader_election_disabled"`
	Periodic               []struct {
		ID         string          `json:"id"`
		IntervalMs int             `json:"interval_ms"`
		RunOnStart bool            `json:"run_on_start"`
		Args       json.RawMessage `json:"args"`
		Queue      string          `json:"queue"`
	} `json:"periodic"`
}

// fixedRetry retries after a fixed delay (the suite's scenarios cannot wait for River's
// default backoff).
type fixedRetry struct{ delay time.Duration }

func (r fixedRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(r.delay) }

func millis(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

// start replaces the insert-only client by a working one and starts it.
func (s *server) start(ctx context.Context, raw json.RawMessage) (any, error) {
	var p startParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	queues := map[string]river.QueueConfig{}
	for name, maxWorkers := range p.Queues {
		queues[name] = river.QueueConfig{MaxWorkers: maxWorkers}
	}
	config := &river.Config{
		ID:                          p.ID,
		Logger:                      s.logger,
		Schema:                      s.schema,
		Queues:                      queues,
		Workers:                     newWorkers(),
		FetchCooldown:               millis(p.FetchCooldownMs),
		FetchPollInterval:           millis(p.FetchPollIntervalMs),
		JobTimeout:                  millis(p.JobTimeoutMs),
		RescueStuckJobsAfter:        millis(p.RescueStuckJobsAfterMs),
		CompletedJobRetentionPeriod: millis(p.CompletedRetentionMs),
		DiscardedJobRetentionPeriod: millis(p.DiscardedRetentionMs),
		LeaderElectionDisabled:      p.LeaderElectionDisabled,
	}
	if p.RetryDelayMs > 0 {
		config.RetryPolicy = fixedRetry{delay: millis(p.RetryDelayMs)}
	}
	for _, periodic := range p.Periodic {
		args, err := decodeArgs("interop_periodic", periodic.Args)
		if err != nil {
			return nil, err
		}
		queue := periodic.Queue
		config.PeriodicJobs = append(config.PeriodicJobs, river.NewPeriodicJob(
			river.PeriodicInterval(millis(periodic.IntervalMs)),
			func() (river.JobArgs, *river.InsertOpts) { return args, &river.InsertOpts{Queue: queue} },
			&river.PeriodicJobOpts{ID: periodic.ID, RunOnStart: periodic.RunOnStart},
		))
	}
	client, err := river.NewClient(riverpgxv5.New(s.pool), config)
	if err != nil {
		return nil, err
	}
	events, cancelEvents := client.Subscribe(
		river.EventKindJobCancelled, river.EventKindJobCompleted, river.EventKindJobFailed,
		river.EventKindJobInterrupted, river.EventKindJobSnoozed, river.EventKindQueuePaused, river.EventKindQueueResumed,
	)
	go func() {
		for event := range events {
			out := map[string]any{"event": "river", "kind": string(event.Kind), "job": wireJob(event.Job)}
			if event.Queue != nil {
				out["queue"] = event.Queue.Name
			}
			emit(out)
		}
	}()
	if err := client.Start(ctx); err != nil {
		cancelEvents()
		return nil, err
	}
	s.mu.Lock()
	s.client = client
	s.working = true
	s.mu.Unlock()
	return map[string]any{"id": client.ID()}, nil
}

// stop stops the working client gracefully (or cancelling running jobs), as a Go service shuts down.
func (s *server) stop(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		Cancel    bool `json:"cancel"`
		TimeoutMs int  `json:"timeout_ms"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	timeout := millis(p.TimeoutMs)
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	stopCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := s.current()
	var err error
	if p.Cancel {
		err = client.StopAndCancel(stopCtx)
	} else {
		err = client.Stop(stopCtx)
	}
	s.mu.Lock()
	s.working = false
	s.mu.Unlock()
	return map[string]any{}, err
}

type insertParams struct {
	Kind string          `json:"kind"`
	Args json.RawMessage `json:"args"`
	Opts *wireOpts       `json:"opts"`
}

type wireOpts struct {
	Queue       string          `json:"queue"`
	Priority    int             `json:"priority"`
	MaxAttempts int             `json:"max_attempts"`
	ScheduledAt *time.Time      `json:"scheduled_at"`
	Tags        []string        `json:"tags"`
	Metadata    json.RawMessage `json:"metadata"`
	Pending     bool            `json:"pending"`
	Unique      *struct {
		ByArgs      bool     `json:"by_args"`
		ByPeriodMs  int64    `json:"by_period_ms"`
		ByQueue     bool     `json:"by_queue"`
		ByState     []string `json:"by_state"`
		ExcludeKind bool     `json:"exclude_kind"`
	} `json:"unique"`
}

func (o *wireOpts) insertOpts() *river.InsertOpts {
	if o == nil {
		return nil
	}
	opts := &river.InsertOpts{
		Queue:       o.Queue,
		Priority:    o.Priority,
		MaxAttempts: o.MaxAttempts,
		Tags:        o.Tags,
		Pending:     o.Pending,
	}
	if len(o.Metadata) > 0 {
		opts.Metadata = []byte(o.Metadata)
	}
	if o.ScheduledAt != nil {
		opts.ScheduledAt = *o.ScheduledAt
	}
	if u := o.Unique; u != nil {
		opts.UniqueOpts = river.UniqueOpts{
			ByArgs:      u.ByArgs,
			ByPeriod:    time.Duration(u.ByPeriodMs) * time.Millisecond,
			ByQueue:     u.ByQueue,
			ExcludeKind: u.ExcludeKind,
		}
		for _, state := range u.ByState {
			opts.UniqueOpts.ByState = append(opts.UniqueOpts.ByState, rivertype.JobState(state))
		}
	}
	return opts
}

func insertResult(res *rivertype.JobInsertResult) map[string]any {
	return map[string]any{"job": wireJob(res.Job), "skipped_as_duplicate": res.UniqueSkippedAsDuplicate}
}

// insert: Insert, or InsertTx in a transaction that commits (or rolls back with "rollback").
func (s *server) insert(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		insertParams
		Tx       bool `json:"tx"`
		Rollback bool `json:"rollback"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	args, err := decodeArgs(p.Kind, p.Args)
	if err != nil {
		return nil, err
	}
	client := s.current()
	if !p.Tx {
		res, err := client.Insert(ctx, args, p.Opts.insertOpts())
		if err != nil {
			return nil, err
		}
		return insertResult(res), nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	res, err := client.InsertTx(ctx, tx, args, p.Opts.insertOpts())
	if err != nil {
		return nil, err
	}
	if p.Rollback {
		return insertResult(res), tx.Rollback(ctx)
	}
	return insertResult(res), tx.Commit(ctx)
}

// insertMany: InsertMany, InsertManyTx, InsertManyFast or InsertManyFastTx.
func (s *server) insertMany(ctx context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		Jobs []insertParams `json:"jobs"`
		Fast bool           `json:"fast"`
		Tx   bool           `json:"tx"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	params := make([]river.InsertManyParams, len(p.Jobs))
	for i, job := range p.Jobs {
		args, err := decodeArgs(job.Kind, job.Args)
		if err != nil {
			return nil, err
		}
		params[i] = river.InsertManyParams{Args: args, InsertOpts: job.Opts.insertOpts()}
	}
	client := s.current()
	if p.Fast {
		var count int
		var err error
		if p.Tx {
			tx, txErr := s.pool.Begin(ctx)
			if txErr != nil {
				return nil, txErr
			}
			defer func() { _ = tx.Rollback(ctx) }()
			if count, err = client.InsertManyFastTx(ctx, tx, params); err == nil {
				err = tx.Commit(ctx)
			}
		} else {
			count, err = client.InsertManyFast(ctx, params)
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"count": count}, nil
	}
	var results []*rivertype.JobInsertResult
	var err error
	if p.Tx {
		tx, txErr := s.pool.Begin(ctx)
		if txErr != nil {
			return nil, txErr
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if results, err = client.InsertManyTx(ctx, tx, params); err == nil {
			err = tx.Commit(ctx)
		}
	} else {
		results, err = client.InsertMany(ctx, params)
	}
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(results))
	for i, res := range results {
		out[i] = insertResult(res)
	}
	return map[string]any{"results": out}, nil
}
