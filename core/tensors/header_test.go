package tensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realFiles lists every real safetensors fixture in testdata/real.
func realFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/real/*/*.safetensors")
	require.NoError(t, err)
	require.Len(t, files, 16, "fixtures missing from testdata/real")
	return files
}

// mkFile builds safetensors bytes from a header and dataLen bytes of data.
func mkFile(header string, dataLen int) []byte {
	b := make([]byte, 8, 8+len(header)+dataLen)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	for i := 0; i < dataLen; i++ {
		b = append(b, byte(i))
	}
	return b
}

func parseBytes(b []byte) (*Header, error) {
	return ReadHeader(bytes.NewReader(b), int64(len(b)))
}

func TestReadHeaderRealFiles(t *testing.T) {
	tests := []struct {
		file     string
		tensors  int
		meta     Metadata
		first    TensorInfo
		dtypeSet []DType
	}{
		{file: "candle/voices.safetensors", tensors: 2,
			first: TensorInfo{Name: "tokens", DType: I64, Shape: []int64{1, 982, 33}, Begin: 0, End: 259248}},
		{file: "lerobot/pusht_frame_0.safetensors", tensors: 10,
			first: TensorInfo{Name: "episode_index", DType: I64, Shape: []int64{}, Begin: 0, End: 8}},
		{file: "ttekcor-textual-inversion/learned_embeds.safetensors", tensors: 1, meta: Metadata{{"format", "pt"}},
			first: TensorInfo{Name: "<detail-schemas>", DType: F32, Shape: []int64{1, 768}, Begin: 0, End: 3072}},
		{file: "hf-safetensors-samples/overall.safetensors", tensors: 9, meta: Metadata{{"test", "a"}},
			first: TensorInfo{Name: "B", DType: U8, Shape: []int64{6}, Begin: 0, End: 6}},
		{file: "catundchat-sd15-lora/pytorch_lora_weights.safetensors", tensors: 256, meta: Metadata{{"format", "pt"}}},
		{file: "cloneofsimo-lora/lora_disney_inpainting.safetensors", tensors: 386},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			h, err := ReadHeaderFile(filepath.Join("testdata/real", tt.file))
			require.NoError(t, err)
			assert.Len(t, h.Tensors, tt.tensors)
			if tt.meta != nil {
				assert.Equal(t, tt.meta, h.Metadata)
			}
			if tt.first.Name != "" {
				assert.Equal(t, tt.first, h.Tensors[0])
			}
			var end int64
			for _, ti := range h.Tensors {
				assert.Equal(t, end, ti.Begin, "tensors in data order")
				end = ti.End
			}
			assert.Equal(t, h.FileSize, h.DataStart+end)
		})
	}
}

func TestReadHeaderKeepsMetadataOrder(t *testing.T) {
	h, err := ReadHeaderFile("testdata/real/cloneofsimo-lora/lora_disney_inpainting.safetensors")
	require.NoError(t, err)
	require.Len(t, h.Metadata, 196)
	assert.Equal(t, MetadataEntry{"<s1>", "<embed>"}, h.Metadata[0])
	v, ok := h.Metadata.Get("text_encoder")
	require.True(t, ok)
	assert.Equal(t, `["CLIPAttention"]`, v)
}

// countingReaderAt counts the bytes a reader asks for, to prove listing a
// huge file reads only its header.
type countingReaderAt struct {
	data []byte // the start of the "file"
	read int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.read += int64(len(p))
	if off >= int64(len(c.data)) {
		return 0, errors.New("read past the header: tensor data was touched")
	}
	return copy(p, c.data[off:]), nil
}

func TestReadHeaderReadsOnlyHeader(t *testing.T) {
	const tensorBytes = 1 << 30 // ten 1 GiB tensors: a 10 GiB file
	var hdr strings.Builder
	hdr.WriteString(`{"__metadata__":{"format":"pt"}`)
	for i := range 10 {
		hdr.WriteString(`,"layer` + string(rune('0'+i)) + `.weight":{"dtype":"F32","shape":[16384,16384],"data_offsets":[`)
		hdr.WriteString(formatInt(int64(i)*tensorBytes) + "," + formatInt(int64(i+1)*tensorBytes))
		hdr.WriteString("]}")
	}
	hdr.WriteString("}")
	b := mkFile(hdr.String(), 0)
	r := &countingReaderAt{data: b}
	h, err := ReadHeader(r, int64(len(b))+10*tensorBytes)
	require.NoError(t, err)
	assert.Len(t, h.Tensors, 10)
	assert.Equal(t, int64(len(b)), r.read, "reads exactly the length and the header")
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }

func TestReadHeaderErrors(t *testing.T) {
	hdrLen := func(n uint64) []byte {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint64(b, n)
		return b
	}
	f32 := func(name string, shape string, b, e int) string {
		return `"` + name + `":{"dtype":"F32","shape":` + shape + `,"data_offsets":[` + formatInt(int64(b)) + `,` + formatInt(int64(e)) + `]}`
	}
	tests := []struct {
		name   string
		file   []byte
		want   error
		tensor string
		detail string
	}{
		{"shorter than 8 bytes", []byte{1, 0, 0}, ErrFileTooSmall, "", "3 bytes"},
		{"empty file", nil, ErrFileTooSmall, "", ""},
		{"header length past the end", hdrLen(100), ErrHeaderLength, "", "claims 100 bytes"},
		{"header length near 2^64", hdrLen(1<<64 - 1), ErrHeaderTooLarge, "", ""},
		{"header length just over the limit", hdrLen(MaxHeaderSize + 1), ErrHeaderTooLarge, "", ""},
		{"invalid UTF-8", mkFile("{\"a\xff\":{}}", 0), ErrHeaderUTF8, "", ""},
		{"non-object JSON", mkFile(`[1,2]`, 0), ErrHeaderNotObject, "", ""},
		{"string JSON", mkFile(`"x"`, 0), ErrHeaderNotObject, "", ""},
		{"leading space", mkFile(` {}`, 0), ErrHeaderNotObject, "", ""},
		{"empty header", mkFile(``, 0), ErrHeaderNotObject, "", ""},
		{"unterminated JSON", mkFile(`{"a":{"dtype":"F32"`, 0), ErrHeaderJSON, "a", ""},
		{"garbage after the object", mkFile(`{} {}`, 0), ErrHeaderJSON, "", "after the header"},
		{"entry is not an object", mkFile(`{"a":[1]}`, 0), ErrInvalidField, "a", "not an object"},
		{"missing dtype", mkFile(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, 4), ErrMissingField, "a", "dtype"},
		{"missing shape", mkFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, 4), ErrMissingField, "a", "shape"},
		{"missing offsets", mkFile(`{"a":{"dtype":"F32","shape":[1]}}`, 4), ErrMissingField, "a", "data_offsets"},
		{"dtype not a string", mkFile(`{"a":{"dtype":3,"shape":[1],"data_offsets":[0,4]}}`, 4), ErrInvalidField, "a", "dtype"},
		{"unknown dtype", mkFile(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, 16), ErrUnknownDType, "a", `"F128"`},
		{"lowercase dtype", mkFile(`{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}`, 4), ErrUnknownDType, "a", `"f32"`},
		{"negative shape", mkFile(`{`+f32("a", "[-1]", 0, 4)+`}`, 4), ErrInvalidShape, "a", "-1"},
		{"fractional shape", mkFile(`{`+f32("a", "[1.5]", 0, 4)+`}`, 4), ErrInvalidShape, "a", "1.5"},
		{"exponent shape", mkFile(`{`+f32("a", "[1e2]", 0, 400)+`}`, 400), ErrInvalidShape, "a", "1e2"},
		{"shape not an array", mkFile(`{`+f32("a", "4", 0, 16)+`}`, 16), ErrInvalidShape, "a", "not an array"},
		{"shape holds a string", mkFile(`{`+f32("a", `["4"]`, 0, 16)+`}`, 16), ErrInvalidShape, "a", "a string"},
		{"shape value over 64 bits", mkFile(`{`+f32("a", "[18446744073709551616]", 0, 4)+`}`, 4), ErrOverflow, "a", ""},
		{"shape product overflow", mkFile(`{`+f32("a", "[4294967296,4294967296,16]", 0, 4)+`}`, 4), ErrOverflow, "a", ""},
		{"byte size overflow", mkFile(`{`+f32("a", "[4611686018427387904]", 0, 4)+`}`, 4), ErrOverflow, "a", ""},
		{"three offsets", mkFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, 4), ErrInvalidField, "a", "3 values"},
		{"offset over int64", mkFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,9223372036854775808]}}`, 4), ErrOverflow, "a", ""},
		{"end before begin", mkFile(`{`+f32("a", "[1]", 0, 4)+`,`+f32("b", "[0]", 8, 4)+`}`, 8), ErrSizeMismatch, "b", "end before"},
		{"size mismatch", mkFile(`{`+f32("a", "[2]", 0, 4)+`}`, 4), ErrSizeMismatch, "a", "needs 8 bytes"},
		{"misaligned F4", mkFile(`{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, 2), ErrMisaligned, "a", ""},
		{"offsets with a hole", mkFile(`{`+f32("a", "[1]", 0, 4)+`,`+f32("b", "[1]", 8, 12)+`}`, 12), ErrOffsetGap, "b", "begins at 8"},
		{"first tensor not at 0", mkFile(`{`+f32("a", "[1]", 4, 8)+`}`, 8), ErrOffsetGap, "a", ""},
		{"overlapping offsets", mkFile(`{`+f32("a", "[2]", 0, 8)+`,`+f32("b", "[1]", 4, 8)+`}`, 8), ErrOffsetOverlap, "b", ""},
		{"trailing bytes", mkFile(`{`+f32("a", "[1]", 0, 4)+`}`, 6), ErrTrailingBytes, "", "2 bytes"},
		{"truncated data", mkFile(`{`+f32("a", "[4]", 0, 16)+`}`, 10), ErrTruncated, "", "holds 10"},
		{"duplicate names", mkFile(`{`+f32("a", "[1]", 0, 4)+`,`+f32("a", "[1]", 4, 8)+`}`, 8), ErrDuplicateName, "a", ""},
		{"empty name", mkFile(`{`+f32("", "[1]", 0, 4)+`}`, 4), ErrEmptyName, "", ""},
		{"metadata value not a string", mkFile(`{"__metadata__":{"format":"pt","rank":4}}`, 0), ErrInvalidMetadata, "", `"rank" has the number 4`},
		{"metadata not an object", mkFile(`{"__metadata__":["pt"]}`, 0), ErrInvalidMetadata, "", "an array"},
		{"metadata nested object", mkFile(`{"__metadata__":{"a":{}}}`, 0), ErrInvalidMetadata, "", "an object"},
		{"metadata duplicate key", mkFile(`{"__metadata__":{"a":"1","a":"2"}}`, 0), ErrInvalidMetadata, "", "twice"},
		{"metadata twice", mkFile(`{"__metadata__":{},"__metadata__":{}}`, 0), ErrDuplicateName, "__metadata__", ""},
		{"duplicate field", mkFile(`{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, 4), ErrInvalidField, "a", "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseBytes(tt.file)
			require.Error(t, err)
			assert.Nil(t, h)
			assert.ErrorIs(t, err, tt.want)
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.tensor, fe.Tensor)
			assert.Contains(t, err.Error(), tt.detail)
		})
	}
}

func TestReadHeaderAccepts(t *testing.T) {
	tests := []struct {
		name    string
		file    []byte
		tensors int
	}{
		{"empty object", mkFile(`{}`, 0), 0},
		{"padding spaces", mkFile(`{}      `, 0), 0},
		{"newline padding", mkFile("{}\n", 0), 0},
		{"null metadata", mkFile(`{"__metadata__":null}`, 0), 0},
		{"unknown tensor field is ignored", mkFile(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":[1,{"x":2}]}}`, 2), 1},
		{"0-rank tensor", mkFile(`{"a":{"dtype":"F64","shape":[],"data_offsets":[0,8]}}`, 8), 1},
		{"empty tensor", mkFile(`{"a":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1), 2},
		{"header order differs from data order",
			mkFile(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 2), 2},
		{"F4 even count", mkFile(`{"a":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}`, 2), 1},
		{"F6 packs to bytes", mkFile(`{"a":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[0,3]}}`, 3), 1},
		{"every new dtype name", mkFile(`{"a":{"dtype":"F8_E8M0","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F8_E5M2FNUZ","shape":[1],"data_offsets":[1,2]},"c":{"dtype":"C64","shape":[1],"data_offsets":[2,10]}}`, 10), 3},
		{"unicode and escapes in names", mkFile(`{"a\"b\\c\u00e9☃":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseBytes(tt.file)
			require.NoError(t, err)
			assert.Len(t, h.Tensors, tt.tensors)
		})
	}
}

func TestReadHeaderFileNamesThePath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "broken.safetensors")
	require.NoError(t, os.WriteFile(p, mkFile(`{"w":{"dtype":"BF17","shape":[1],"data_offsets":[0,2]}}`, 2), 0o644))
	_, err := ReadHeaderFile(p)
	require.ErrorIs(t, err, ErrUnknownDType)
	assert.Equal(t, p+`: tensor "w": unknown dtype: "BF17"`, err.Error())

	_, err = Open(p)
	require.ErrorIs(t, err, ErrUnknownDType)
	assert.Contains(t, err.Error(), p)

	_, err = ReadHeaderFile(filepath.Join(dir, "missing.safetensors"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestDTypes(t *testing.T) {
	want := []struct {
		name string
		bits uint64
	}{
		{"BOOL", 8}, {"F4", 4}, {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"U8", 8}, {"I8", 8}, {"F8_E5M2", 8}, {"F8_E4M3", 8},
		{"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16}, {"U16", 16}, {"F16", 16}, {"BF16", 16},
		{"I32", 32}, {"U32", 32}, {"F32", 32}, {"C64", 64}, {"F64", 64}, {"I64", 64}, {"U64", 64},
	}
	all := DTypes()
	require.Len(t, all, len(want), "the enum of the reference crate, in order")
	for i, w := range want {
		assert.Equal(t, w.name, all[i].String())
		assert.Equal(t, w.bits, all[i].Bits(), w.name)
		d, ok := ParseDType(w.name)
		require.True(t, ok)
		assert.Equal(t, all[i], d)
	}
	_, ok := ParseDType("F128")
	assert.False(t, ok)
}
