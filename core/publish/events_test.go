package publish

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEventJSON(t *testing.T) {
	b, err := json.Marshal(Event{Step: StepUpload, Phase: "upload", File: "unet/a.safetensors", Bytes: 10, Total: 40,
		Rate: 5, ETA: 6 * time.Second})
	require.NoError(t, err)
	assert.JSONEq(t, `{"step":"upload","phase":"upload","file":"unet/a.safetensors","bytes":10,"total":40,"rate":5,"eta_seconds":6}`, string(b))
	b, err = json.Marshal(Event{Step: StepDone, Done: true, URL: "http://x/c"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"step":"done","done":true,"url":"http://x/c"}`, string(b))
}

// Every event passes (the edge throttles, not the job); Rate and ETA come
// from each step's own elapsed time, also when steps interleave.
func TestEmitterEstimatesPerStep(t *testing.T) {
	var got []Event
	m := newEmitter(func(e Event) { got = append(got, e) })
	now := time.Unix(0, 0)
	m.now = func() time.Time { return now }
	m.emit(Event{Step: StepStage, Message: "start"})
	for i := int64(1); i <= 10; i++ {
		now = now.Add(30 * time.Millisecond)
		m.progress(Event{Step: StepStage, Bytes: i * 100, Total: 1000})
	}
	require.Len(t, got, 11, "nothing is dropped")
	assert.InDelta(t, 1000/0.3, got[len(got)-1].Rate, 1)

	got = nil
	m.emit(Event{Step: StepValidate})
	now = now.Add(time.Second)
	m.progress(Event{Step: StepValidate, Bytes: 250, Total: 1000})
	m.progress(Event{Step: StepStage, Bytes: 1300, Total: 2000}) // interleaved: the stage's own clock
	require.Len(t, got, 3)
	assert.InDelta(t, 250, got[1].Rate, 0.01)
	assert.Equal(t, 3*time.Second, got[1].ETA)
	assert.InDelta(t, 1000, got[2].Rate, 0.01)
}
