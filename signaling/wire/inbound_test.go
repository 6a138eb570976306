package wire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

var inboundSamples = []string{
	`{"seq":7,"type":"signal","to":"abc","data":1}`,
	`{"type":"ping","seq":0}`,
	`{"type":"ping","seq":-1}`,
	`{"type":"ping","seq":1.5}`,
	`{"type":"ping","seq":"3"}`,
	`{"type":"ping","seq":1e3}`,
	`{"type":"ping","SEQ":4}`,
	`{"type":"ping","seq":123456789012345678901}`,
	`{"type":"ping","type":"signal"}`,
	`{"type":"signal","to":"abc","data":{"sdp":"v=0\r\n","type":"offer"}}`,
	` { "type" : "broadcast" , "data" : [1, {"a":"}"}, "x\"y"] } `,
	`{"type":"signal","to":"abc","data":null}`,
	`{"type":"signal","to":"abc","data":12.5e3}`,
	`{"type":"signal","to":"abc","data":true,"extra":{"deep":[[]]}}`,
	`{"type":"ping"}`, `{}`, `[]`, `"x"`, `5`, `null`, `{"type":5}`, `{"to":null}`,
	`{"Type":"signal","TO":"a","Data":1}`, `{"type":"sig\u006eal","data":1}`,
	`{"type":"signal","type":"broadcast","data":1,"data":2}`, `{"ty\"pe":"x"}`,
	`{"type":"a"`, `{"type":"a",}`, `{"type":"a"} x`, ``, `{"data":"\u00e9"}`,
	`{"data":"a","to":"b"   }`, `{"type":"signal","to":"b","data":"}{"}`,
}

// TestDecodeInboundMatchesUnmarshal checks the fast path against
// json.Unmarshal: same fields (data compared as JSON) and same errors.
func TestDecodeInboundMatchesUnmarshal(t *testing.T) {
	for _, s := range inboundSamples {
		checkDecode(t, []byte(s))
	}
}

func FuzzDecodeInbound(f *testing.F) {
	for _, s := range inboundSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	var got, want Inbound
	errGot := DecodeInbound(data, &got)
	errWant := json.Unmarshal(data, &want)
	if (errGot == nil) != (errWant == nil) || (errGot != nil && errGot.Error() != errWant.Error()) {
		t.Fatalf("%q: error %v, json.Unmarshal says %v", data, errGot, errWant)
	}
	if errGot != nil {
		return
	}
	if got.Type != want.Type || got.To != want.To || got.Seq != want.Seq || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("%q: got %+v, json.Unmarshal gives %+v", data, got, want)
	}
}

// TestRelayFrameMatchesEncode checks the spliced frame against the one
// json.Marshal builds.
func TestRelayFrameMatchesEncode(t *testing.T) {
	for _, d := range []string{`{"candidate":"a<b>&c"}`, `null`, `[1, 2 ]`, `"é\u2028"`} {
		var got, want any
		if err := json.Unmarshal(RelayFrame(TypeSignal, "ID_x-1", []byte(d)), &got); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(Encode(Outbound{Type: TypeSignal, From: "ID_x-1", Data: json.RawMessage(d)}), &want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v, want %v", d, got, want)
		}
	}
}
