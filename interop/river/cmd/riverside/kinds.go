package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/riverqueue/river"
)

// The job kinds River's side knows. Each has a twin in test/river/utils/kinds.ts with the same
// kind name and JSON shape; the workers report what they decoded as events.

// TrickyArgs holds values that are easy to get wrong across languages: int64 beyond 2^53,
// times, unicode, HTML characters, nested objects, maps and a null pointer.
type TrickyArgs struct {
	BigID    int64            `json:"big_id"`
	Small    int              `json:"small"`
	Ratio    float64          `json:"ratio"`
	At       time.Time        `json:"at"`
	Text     string           `json:"text"`
	HTML     string           `json:"html"`
	Flag     bool             `json:"flag"`
	Nested   TrickyNested     `json:"nested"`
	Tags     []string         `json:"tags"`
	Counts   map[string]int64 `json:"counts"`
	Optional *string          `json:"optional"`
}

// TrickyNested is a nested object with its own nested object.
type TrickyNested struct {
	Name  string      `json:"name"`
	Inner TrickyInner `json:"inner"`
}

// TrickyInner is the innermost object.
type TrickyInner struct {
	Depth  int     `json:"depth"`
	Values []int64 `json:"values"`
}

func (TrickyArgs) Kind() string { return "interop_tricky" }

// TrickyWorker reports the decoded args and completes.
type TrickyWorker struct {
	river.WorkerDefaults[TrickyArgs]
}

func (w *TrickyWorker) Work(ctx context.Context, job *river.Job[TrickyArgs]) error {
	decoded, err := json.Marshal(job.Args)
	if err != nil {
		return err
	}
	emitWork(job.JobRow, string(decoded), map[string]any{
		"big_id":          strconv.FormatInt(job.Args.BigID, 10),
		"at_unix_ms":      strconv.FormatInt(job.Args.At.UnixMilli(), 10),
		"values":          formatInts(job.Args.Nested.Inner.Values),
		"text_runes":      len([]rune(job.Args.Text)),
		"optional_is_nil": job.Args.Optional == nil,
	})
	return nil
}

func formatInts(values []int64) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = strconv.FormatInt(v, 10)
	}
	return out
}

// BehaveArgs tells BehaveWorker how the attempt ends.
type BehaveArgs struct {
	// Mode: complete, fail, fail_once, snooze, snooze_once, cancel, panic, block (until the
	// context is cancelled), block_once (block on attempt 1, complete after: for rescue
	// scenarios), block_then_sleep (block on attempt 1, then run SnoozeMs and complete), hang
	// (ignores the context).
	Mode     string `json:"mode"`
	Message  string `json:"message"`
	SnoozeMs int    `json:"snooze_ms"`
}

func (BehaveArgs) Kind() string { return "interop_behave" }

// BehaveWorker ends each attempt as its args say.
type BehaveWorker struct {
	river.WorkerDefaults[BehaveArgs]
}

func (w *BehaveWorker) Work(ctx context.Context, job *river.Job[BehaveArgs]) error {
	emitWork(job.JobRow, mustJSON(job.Args), nil)
	switch job.Args.Mode {
	case "complete":
		return nil
	case "fail":
		return errors.New(job.Args.Message)
	case "fail_once":
		if job.Attempt == 1 {
			return errors.New(job.Args.Message)
		}
		return nil
	case "snooze":
		return river.JobSnooze(time.Duration(job.Args.SnoozeMs) * time.Millisecond)
	case "snooze_once":
		if _, ok := metadataValue(job.Metadata, "snoozes"); !ok {
			return river.JobSnooze(time.Duration(job.Args.SnoozeMs) * time.Millisecond)
		}
		return nil
	case "cancel":
		return river.JobCancel(errors.New(job.Args.Message))
	case "panic":
		panic(job.Args.Message)
	case "block":
		<-ctx.Done()
		at := time.Now()
		emit(map[string]any{
			"event":      "ctx_done",
			"id":         strconv.FormatInt(job.ID, 10),
			"at_unix_ns": strconv.FormatInt(at.UnixNano(), 10),
			"cause":      fmt.Sprint(context.Cause(ctx)),
		})
		return ctx.Err()
	case "block_once":
		if job.Attempt > 1 {
			return nil
		}
		<-ctx.Done()
		return ctx.Err()
	case "block_then_sleep":
		if job.Attempt == 1 {
			<-ctx.Done()
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			emit(map[string]any{"event": "ctx_done", "id": strconv.FormatInt(job.ID, 10), "cause": fmt.Sprint(context.Cause(ctx))})
			return ctx.Err()
		case <-time.After(time.Duration(job.Args.SnoozeMs) * time.Millisecond):
			return nil
		}
	case "hang":
		select {}
	default:
		return fmt.Errorf("unknown mode %q", job.Args.Mode)
	}
}

func metadataValue(metadata []byte, key string) (json.RawMessage, bool) {
	var values map[string]json.RawMessage
	if err := json.Unmarshal(metadata, &values); err != nil {
		return nil, false
	}
	value, ok := values[key]
	return value, ok
}

// UniqueAllArgs is deduplicated on all its keys (no `river:"unique"` tags).
type UniqueAllArgs struct {
	Customer string            `json:"customer"`
	Amount   int64             `json:"amount"`
	Note     string            `json:"note"`
	Nested   UniqueNested      `json:"nested"`
	Labels   map[string]string `json:"labels"`
	Items    []int             `json:"items"`
}

// UniqueNested is a nested object in unique args.
type UniqueNested struct {
	Zeta  string `json:"zeta"`
	Alpha int    `json:"alpha"`
}

func (UniqueAllArgs) Kind() string { return "interop_unique_all" }

// UniqueKeysArgs is deduplicated on chosen keys: customer, address.city and all of meta.
type UniqueKeysArgs struct {
	Customer string        `json:"customer" river:"unique"`
	Note     string        `json:"note"`
	Address  UniqueAddress `json:"address"`
	Meta     UniqueMeta    `json:"meta" river:"unique"`
}

// UniqueAddress has one unique field.
type UniqueAddress struct {
	Street string `json:"street"`
	City   string `json:"city" river:"unique"`
}

// UniqueMeta is unique as a whole.
type UniqueMeta struct {
	Region string `json:"region"`
	Tier   int    `json:"tier"`
}

func (UniqueKeysArgs) Kind() string { return "interop_unique_keys" }

// NoopWorker completes and reports the job.
type NoopWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
}

func (w *NoopWorker[T]) Work(ctx context.Context, job *river.Job[T]) error {
	emitWork(job.JobRow, mustJSON(job.Args), nil)
	return nil
}

// PeriodicArgs is the periodic job's args.
type PeriodicArgs struct {
	Source string `json:"source"`
}

func (PeriodicArgs) Kind() string { return "interop_periodic" }

// ResumableIntArgs walks ids with an int64 cursor (the last id processed).
type ResumableIntArgs struct {
	IDs    []int64 `json:"ids"`
	FailAt int64   `json:"fail_at"`
}

func (ResumableIntArgs) Kind() string { return "interop_resumable_int" }

// ResumableIntWorker: step "prepare", cursor step "process" (int64 cursor), step "finish". On
// its first attempt it fails when it reaches FailAt, after checkpointing the ids before it.
type ResumableIntWorker struct {
	river.WorkerDefaults[ResumableIntArgs]
}

func (w *ResumableIntWorker) Work(ctx context.Context, job *river.Job[ResumableIntArgs]) error {
	emitWork(job.JobRow, mustJSON(job.Args), nil)
	river.ResumableStep(ctx, "prepare", nil, func(ctx context.Context) error {
		emitStep(job.ID, job.Attempt, "prepare", nil)
		return nil
	})
	river.ResumableStepCursor(ctx, "process", nil, func(ctx context.Context, cursor int64) error {
		emitStep(job.ID, job.Attempt, "process:start", strconv.FormatInt(cursor, 10))
		for _, id := range job.Args.IDs {
			if id <= cursor {
				continue
			}
			if id == job.Args.FailAt && job.Attempt == 1 {
				return fmt.Errorf("failing at %d on attempt 1", id)
			}
			emitStep(job.ID, job.Attempt, "process:item", strconv.FormatInt(id, 10))
			if err := river.ResumableSetCursor(ctx, id); err != nil {
				return err
			}
		}
		return nil
	})
	river.ResumableStep(ctx, "finish", nil, func(ctx context.Context) error {
		emitStep(job.ID, job.Attempt, "finish", nil)
		return nil
	})
	return nil
}

// ResumableStructArgs walks pages with a struct cursor.
type ResumableStructArgs struct {
	IDs    []int64 `json:"ids"`
	FailAt int64   `json:"fail_at"`
}

func (ResumableStructArgs) Kind() string { return "interop_resumable_struct" }

// StructCursor is a struct cursor with an int64, an int and a string.
type StructCursor struct {
	LastID int64  `json:"last_id"`
	Count  int    `json:"count"`
	Token  string `json:"token"`
}

// ResumableStructWorker is ResumableIntWorker with a struct cursor.
type ResumableStructWorker struct {
	river.WorkerDefaults[ResumableStructArgs]
}

func (w *ResumableStructWorker) Work(ctx context.Context, job *river.Job[ResumableStructArgs]) error {
	emitWork(job.JobRow, mustJSON(job.Args), nil)
	river.ResumableStep(ctx, "prepare", nil, func(ctx context.Context) error {
		emitStep(job.ID, job.Attempt, "prepare", nil)
		return nil
	})
	river.ResumableStepCursor(ctx, "process", nil, func(ctx context.Context, cursor StructCursor) error {
		emitStep(job.ID, job.Attempt, "process:start", mustJSON(cursor))
		for _, id := range job.Args.IDs {
			if id <= cursor.LastID {
				continue
			}
			if id == job.Args.FailAt && job.Attempt == 1 {
				return fmt.Errorf("failing at %d on attempt 1", id)
			}
			emitStep(job.ID, job.Attempt, "process:item", strconv.FormatInt(id, 10))
			cursor = StructCursor{LastID: id, Count: cursor.Count + 1, Token: "after-" + strconv.FormatInt(id, 10)}
			if err := river.ResumableSetCursor(ctx, cursor); err != nil {
				return err
			}
		}
		return nil
	})
	river.ResumableStep(ctx, "finish", nil, func(ctx context.Context) error {
		emitStep(job.ID, job.Attempt, "finish", nil)
		return nil
	})
	return nil
}

// newArgs returns an empty args value of a kind, for decoding args sent by the test.
func newArgs(kind string) (river.JobArgs, error) {
	switch kind {
	case "interop_tricky":
		return &TrickyArgs{}, nil
	case "interop_behave":
		return &BehaveArgs{}, nil
	case "interop_unique_all":
		return &UniqueAllArgs{}, nil
	case "interop_unique_keys":
		return &UniqueKeysArgs{}, nil
	case "interop_periodic":
		return &PeriodicArgs{}, nil
	case "interop_resumable_int":
		return &ResumableIntArgs{}, nil
	case "interop_resumable_struct":
		return &ResumableStructArgs{}, nil
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

// decodeArgs decodes args JSON into the kind's struct, then dereferences it: River inserts
// (and computes unique keys from) the struct value as a Go service would hold it.
func decodeArgs(kind string, raw json.RawMessage) (river.JobArgs, error) {
	target, err := newArgs(kind)
	if err != nil {
		return nil, err
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, target); err != nil {
			return nil, fmt.Errorf("decoding %s args: %w", kind, err)
		}
	}
	switch a := target.(type) {
	case *TrickyArgs:
		return *a, nil
	case *BehaveArgs:
		return *a, nil
	case *UniqueAllArgs:
		return *a, nil
	case *UniqueKeysArgs:
		return *a, nil
	case *PeriodicArgs:
		return *a, nil
	case *ResumableIntArgs:
		return *a, nil
	case *ResumableStructArgs:
		return *a, nil
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

func newWorkers() *river.Workers {
	workers := river.NewWorkers()
	river.AddWorker(workers, &TrickyWorker{})
	river.AddWorker(workers, &BehaveWorker{})
	river.AddWorker(workers, &NoopWorker[UniqueAllArgs]{})
	river.AddWorker(workers, &NoopWorker[UniqueKeysArgs]{})
	river.AddWorker(workers, &NoopWorker[PeriodicArgs]{})
	river.AddWorker(workers, &ResumableIntWorker{})
	river.AddWorker(workers, &ResumableStructWorker{})
	return workers
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%q", err.Error())
	}
	return string(b)
}
