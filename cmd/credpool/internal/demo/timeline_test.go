// timeline_test.go tests how a leg becomes a timeline: the state held
// longest in each half hour, failed attempts over it, and the failed
// requests counted.

package demo

import (
	"strings"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/stretchr/testify/assert"
)

func TestTimeline(t *testing.T) {
	m := time.Minute
	l := &leg{
		changes: []change{
			{key: 0, at: 60 * m, state: credpool.StateDead},
			{key: 1, at: 10 * m, state: credpool.StateExhausted},
			{key: 1, at: 50 * m, state: credpool.StateOK},
			{key: 2, at: 15 * m, state: credpool.StateExhausted}, // half and half: the worse
			{key: 2, at: 30 * m, state: credpool.StateOK},
		},
		attempts: []attempt{
			{key: 0, at: 60 * m, status: 401},
			{key: 1, at: 40 * m, status: 429},
			{key: 1, at: 55 * m, status: 200},
		},
	}
	for i := range 12 {
		l.failed = append(l.failed, 90*m+time.Duration(i)*m)
	}
	l.failed = append(l.failed, 5*m, 20*m, dayLen-m)
	tl := newTimeline(l, 3)

	tests := []struct {
		key  int
		want string // the first six cells
	}{
		{0, "==!xxx"}, // dead from 01:00, its 401 at 01:00
		{1, "~!===="}, // cooling 00:10-00:50, refused at 00:40
		{2, "~====="},
	}
	for _, tt := range tests {
		var got strings.Builder
		for c := range 6 {
			got.WriteByte(byte(tl.mark(tt.key, c)))
		}
		assert.Equal(t, tt.want, got.String(), "key %d", tt.key)
	}
	assert.Equal(t, markDead, tl.states[0][columns-1], "dead to the end")
	assert.Equal(t, []int{1, 2, 0}, tl.sent)
	assert.Equal(t, []int{1, 1, 0}, tl.refused)
	assert.Equal(t, 2, tl.failed[0])
	assert.Equal(t, 12, tl.failed[3])
	assert.Equal(t, 1, tl.failed[columns-1])

	var row strings.Builder
	for _, n := range tl.failed[:5] {
		row.WriteString(failedCell(false, n))
	}
	assert.Equal(t, "2..+.", row.String())
}

func TestTimeOfDay(t *testing.T) {
	tests := []struct {
		h, m    int
		offset  time.Duration
		nextDay bool
	}{
		{6, 0, 0, false},
		{7, 30, 90 * time.Minute, false},
		{23, 59, 17*time.Hour + 59*time.Minute, false},
		{0, 0, 18 * time.Hour, true},
		{5, 59, 23*time.Hour + 59*time.Minute, true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.offset, at(tt.h, tt.m))
		assert.Equal(t, tt.nextDay, nextDay(tt.offset))
	}
	assert.Equal(t, "07:30", timeOfDay(at(7, 30)))
	assert.Equal(t, "06:00", timeOfDay(dayLen), "the day ends when it began")
}
