// Prints River v0.51.2's unique-key strings and hashes for the golden vectors of
// test/internal/uniqueKey.test.ts and test/Unique.test.ts. See README.md for how to run it.
package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/riverqueue/river/internal/dbunique"
	"github.com/riverqueue/river/rivertype"
)

type clock struct{}

func (clock) Now() time.Time        { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
func (clock) NowOrNil() *time.Time { return nil }

type Inner struct {
	Z     int            `json:"z"`
	Ten   int            `json:"m"`
	A     string         `json:"a"`
	Extra map[string]int `json:"extra,omitempty"`
}

type Variant struct {
	Kind string `json:"kind"`
	Zeta int    `json:"zeta,omitempty"`
	Beta int    `json:"beta,omitempty"`
}

type NestedArgs struct {
	Label   string                    `json:"label"`
	Inner   Inner                     `json:"inner"`
	Map     map[string]int            `json:"map"`
	Any     map[string]any            `json:"any"`
	List    []Inner                   `json:"list"`
	Vars    []Variant                 `json:"vars"`
	Records map[string]Inner          `json:"records"`
	Big     int64                     `json:"big"`
}

func (NestedArgs) Kind() string { return "nested_args" }

type SelectedArgs struct {
	Inner Inner          `json:"inner" river:"unique"`
	Map   map[string]int `json:"map" river:"unique"`
	Skip  string         `json:"skip"`
}

func (SelectedArgs) Kind() string { return "selected_args" }

func show(args rivertype.JobArgs) {
	encoded, err := json.Marshal(args)
	if err != nil {
		panic(err)
	}
	opts := &dbunique.UniqueOpts{ByArgs: true}
	key, err := dbunique.UniqueKey(clock{}, opts, &rivertype.JobInsertParams{Args: args, EncodedArgs: encoded, Kind: args.Kind(), Queue: "default"})
	if err != nil {
		panic(err)
	}
	ks, _ := dbunique.KeyString(clock{}, opts, &rivertype.JobInsertParams{Args: args, EncodedArgs: encoded, Kind: args.Kind(), Queue: "default"})
	fmt.Printf("encoded: %s\nstring: %s\nkey: %x\n", encoded, ks, key)
}

func main() {
	show(NestedArgs{
		Label: "<l&>",
		Inner: Inner{Z: 1, Ten: 2, A: "a", Extra: map[string]int{"b": 1, "10": 2, "9": 3}},
		Map:   map[string]int{"10": 1, "9": 2, "b": 3, "é": 4, "😀": 5, "\ue000": 6},
		Any:   map[string]any{"z": []any{map[string]any{"y": 1, "x": 2}}, "a": nil, "10": true},
		List:  []Inner{{Z: 3, Ten: 4, A: "b"}},
		Vars:  []Variant{{Kind: "z", Zeta: 1}, {Kind: "b", Beta: 2}},
		Records: map[string]Inner{"k2": {Z: 5, Ten: 6, A: "c"}, "k10": {Z: 7, Ten: 8, A: "d"}},
		Big:   1460323737035677698,
	})
	show(SelectedArgs{Inner: Inner{Z: 1, Ten: 2, A: "a"}, Map: map[string]int{"10": 1, "9": 2}, Skip: "x"})
}
