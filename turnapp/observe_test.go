package turnapp

import "testing"

func TestFrameSize(t *testing.T) {
	stunHdr := func(length int) []byte {
		return []byte{0x00, 0x01, byte(length >> 8), byte(length), 0x21, 0x12, 0xA4, 0x42}
	}
	tests := []struct {
		name     string
		b        []byte
		size     int
		complete bool
	}{
		{"too short", []byte{0, 1}, 0, false},
		{"stun header only", stunHdr(8), 28, false},
		{"stun complete", append(stunHdr(0), make([]byte, 12)...), 20, true},
		{"bad cookie", []byte{0, 1, 0, 0, 1, 2, 3, 4}, -1, false},
		{"channel data padded", []byte{0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0}, 12, true},
		{"channel data partial", []byte{0x40, 0x00, 0x00, 0x05, 1}, 12, false},
		{"garbage", []byte{0xC0, 0, 0, 0}, -1, false},
	}
	for _, tc := range tests {
		size, complete := frameSize(tc.b)
		if size != tc.size || complete != tc.complete {
			t.Errorf("%s: frameSize = %d, %v; want %d, %v", tc.name, size, complete, tc.size, tc.complete)
		}
	}
}

func TestUserOf(t *testing.T) {
	for in, want := range map[string]string{"1700000000:alice": "alice", "1700000000": "1700000000", "1:a:b": "a:b"} {
		if got := userOf(in); got != want {
			t.Errorf("userOf(%q) = %q, want %q", in, got, want)
		}
	}
}
