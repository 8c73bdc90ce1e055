package xet

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// xet-core's reference vectors for the xorb and file hashes
// (xet_core_structures/src/merklehash/aggregated_hashes.rs, test_correctness:
// "intended to be used as a reference to ensure that other implementations
// or ports of these functions produce the correct hashes"): leaves, the
// xorb hash, and (salt, file hash with that salt) pairs; the zero salt is
// the file hash. Hashes are in the API's string form.
var xetCoreVectors = []struct {
	leaves []struct {
		hash string
		size uint32
	}
	xorb  string
	salts [][2]string
}{
	{
		leaves: nil,
		xorb:   "0000000000000000000000000000000000000000000000000000000000000000",
		salts: [][2]string{
			{"0000000000000000000000000000000000000000000000000000000000000000", "0000000000000000000000000000000000000000000000000000000000000000"},
			{"c1cdea79b61cd4776c9f3f8e08767fd5f42e33f9cec8c13d01b947901fad1954", "0000000000000000000000000000000000000000000000000000000000000000"},
		},
	},
	{
		leaves: []struct {
			hash string
			size uint32
		}{{"0000000000000000000000000000000000000000000000000000000000000000", 0}},
		xorb: "0000000000000000000000000000000000000000000000000000000000000000",
		salts: [][2]string{
			{"0000000000000000000000000000000000000000000000000000000000000000", "638a6bc391964a85939d48f008e8bdbae6a7975e7ca2d87a3ce2492f4e4d8a4c"},
			{"f4aa7219b7bc6145df344b930c1cf63680037e13236f4b3b8f439aba1520d443", "3e44e4a200e05a69afc979eb2e0507817e4f0ddff128a97e563c0e05fed3bd25"},
			{"51d15f80fa3c9b0c42673a3e27206741e6b8881ae902614a8dd45e6e0e4ab1d2", "7a6c58ad3831f6ac16727ebe8e1a4e7d9f509ba8e1f75f5f31c5e67c66a94486"},
		},
	},
	{
		leaves: []struct {
			hash string
			size uint32
		}{{"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100}},
		xorb: "cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6",
		salts: [][2]string{
			{"0000000000000000000000000000000000000000000000000000000000000000", "8e16257caa3fe079d484d872a8975264b2ff683b0d6db9028cc7c0f968a45661"},
			{"285371a6a3c8c4e561469c97766c46f0b9799bd8ea51a4ad27a082df8c28b7da", "6c18994ed5e6a223aeff68a6e386dbba7b3c25de076245dc77892b4ad49ac978"},
			{"6e88acf8fc9f70ab609a46a58e93404f221bf6f1b95b4a12364032de9d3fbdf2", "c5af028b084ed1d7f9f131b60724547df167a149fdb39a7fcd6c92fbc777bbcb"},
		},
	},
	{
		leaves: []struct {
			hash string
			size uint32
		}{
			{"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100},
			{"c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72", 200},
			{"0d2beb91b9196929a5ddec9f6e306924ddf4a24268e3e59fd8464738d525af37", 300},
		},
		xorb: "71ec1275fca074724e2dd666921b3277c7cee603e4d025bcab2d4050015be2bc",
		salts: [][2]string{
			{"0000000000000000000000000000000000000000000000000000000000000000", "54e55dccc6653c612bdb5576c5d3cb34bb31bc4e100248abccf4c908b3ef7715"},
			{"b286606709ef32a1cfede1e603a39f83fef56772d8234c0e35d8920071d80b69", "337f1f046e4cfc1057f0f3edbd87cf977fdfaf3c2b0c0031ca2d1d2a34aa2270"},
			{"20f7357cdb2f6d3727375656e4eaf464fa195094ff501edc08aaccfb1419a07b", "82c5359ad947e91e4da6a00034f94a9159bd3bf24d005ef167648b9d3ba77f8c"},
		},
	},
	{
		leaves: []struct {
			hash string
			size uint32
		}{
			{"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100},
			{"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100},
			{"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100},
			{"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100},
		},
		xorb: "89f2ada89ff8c96763c6b25010e6dd76a4c05b1466207633ea559acf2093211b",
		salts: [][2]string{
			{"0000000000000000000000000000000000000000000000000000000000000000", "2cdba690d0e09563596e0cda626d43eb4c96ef1e994fe72d9b2f5a83cfcd36dd"},
			{"705cc0697edd49c5258951922f5df72e16deaa58f85e78c381a574c4e3c9ad94", "a3da5ccdbea87eafe6400ad30e45df94bcad053d72c246ff94a7934a5a35abdd"},
			{"8034daa5ecbb2747e07125153b27fd7fe80e0987a90ff35038e65ede487061fb", "39f759769aa24443a9e01d65e168790bbae126d604524d09d8f5bb27cc1f9a19"},
		},
	},
	{
		leaves: []struct {
			hash string
			size uint32
		}{
			{"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100},
			{"c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72", 200},
			{"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100},
			{"c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72", 200},
		},
		xorb: "90f8313ef12df385d237a067aded02562c35ded12116e32eba401dbc86c38031",
		salts: [][2]string{
			{"0000000000000000000000000000000000000000000000000000000000000000", "284ea045e5a579e99c21ec597c20de1fc0c09e7168162aac00db8f61b3d82dbb"},
			{"d08d1b24938b34a558972c6fe99f6153ef502f064b74d8ca890cdfb8eb4f953c", "6812247dc5740215154ace7e4ffe271914da445524492677d36bdb6ec1282142"},
			{"210cfc75c396d665afc41376548e139fb62d3af883b94535506f30fe5e5af054", "adbce79dba197ed0f33290c11bb44ecd5bca689dd57997998e3fdaee60846acb"},
		},
	},
	{
		leaves: []struct {
			hash string
			size uint32
		}{
			{"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100},
			{"c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72", 200},
			{"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100},
			{"c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72", 200},
			{"0d2beb91b9196929a5ddec9f6e306924ddf4a24268e3e59fd8464738d525af37", 300},
			{"adf8773496a9b7319b2e50dc98093f344053b17d8ad37100b9c07d9805988784", 400},
		},
		xorb: "52c826f99507aa05d0b45e9837fa1709e0485425cfbcb1e80db3905cf98b3ee9",
		salts: [][2]string{
			{"0000000000000000000000000000000000000000000000000000000000000000", "91d21684db364c8883ab8209fa5eb2e781cf07f37e1fa43e731c30839afe422f"},
			{"fceabc1f6c6aaaa176bc53b2d6899a3ab99eaebd13b5f0cf36080e6f894bbbf5", "b70b051189a20b58d0c832111e0470396094518b6af8bd8c813c9ccb764ab602"},
			{"2bebd697343f19943b09f4d4f72e9b38e75cb77a484fd2b004f911b6ba747f4d", "7891a3024bab1566cd7d421b90c31ca51db694647f7541211a0adeb188f26f4d"},
		},
	},
	{
		leaves: []struct {
			hash string
			size uint32
		}{
			{"0000000000000000000000000000000000000000000000000000000000000000", 0},
			{"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100},
			{"0000000000000000000000000000000000000000000000000000000000000000", 0},
			{"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100},
		},
		xorb: "e1755c85be07fd6b7a8d7becc85e6d8c5f507f2a3d38b316bcb6f97855e72188",
		salts: [][2]string{
			{"0000000000000000000000000000000000000000000000000000000000000000", "207caf24fce045ac6d873b4c6186a5a435d600d103e1ae345e55ddf1f4b7f7ef"},
			{"031f44db2e13e20c068a83d67c607b5134ddd0e627c2a4f9a6335feb0340625f", "5d343ba4d940ae1a7039774456702e1e45400d47f2a04ae987046984a440b2b5"},
			{"024d165e5cc2770217cbfe0af422666f4333f94f35faca6d4450be7eac3233ba", "5b7497691632f794a40d33908473770034a651fe76bd8036a4b1c1c2246b0bfe"},
		},
	},
}

func mustHash(t *testing.T, s string) Hash {
	t.Helper()
	h, err := ParseHash(s)
	require.NoError(t, err)
	return h
}

func TestXetCoreReferenceVectors(t *testing.T) {
	for i, v := range xetCoreVectors {
		var chunks []Chunk
		for _, l := range v.leaves {
			chunks = append(chunks, Chunk{Hash: mustHash(t, l.hash), Size: l.size})
		}
		assert.Equal(t, v.xorb, XorbHash(chunks).String(), "vector %d: xorb hash", i)
		for _, s := range v.salts {
			salt := mustHash(t, s[0])
			var got Hash
			switch {
			case len(chunks) == 0:
				// file_hash_with_salt of no chunks is zero whatever the salt.
			case salt.IsZero():
				got = FileHash(chunks)
			default:
				got = HMAC(XorbHash(chunks), salt)
			}
			assert.Equal(t, s[1], got.String(), "vector %d: file hash with salt %s", i, s[0])
		}
	}
}

// Two of xet-core's longer vectors, built by repetition: 32 times one
// leaf, and 8 distinct leaves (sizes 0..700) 8 times over.
func TestXetCoreReferenceVectorsLong(t *testing.T) {
	leaf := mustHash(t, "cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6")
	var same []Chunk
	for range 32 {
		same = append(same, Chunk{Hash: leaf, Size: 100})
	}
	assert.Equal(t, "0a0123c1617921883b7e13902095fcb86676e77c49120c33b233003b0af0e0a6", XorbHash(same).String())
	assert.Equal(t, "53af4711fd1d5e5bdc7f931b6be932314d8d673cb16ad2482f6f5222eaf9e63d", FileHash(same).String())

	eight := []string{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6",
		"c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72",
		"0d2beb91b9196929a5ddec9f6e306924ddf4a24268e3e59fd8464738d525af37",
		"adf8773496a9b7319b2e50dc98093f344053b17d8ad37100b9c07d9805988784",
		"4ac202caf347fc1e9c874b1ef6a1c5e619141eb775a6f43f0f0124ccd0060d9e",
		"b3b28636f65c149ea52eb1f94669466f70f033b54cea792824c696ba6ef3c389",
		"0e2c1a002aae913d2c0fc8ddfa4e9e14b7b311b3b0d458726d5d9f6a6318013c",
	}
	var many []Chunk
	for range 8 {
		for i, s := range eight {
			many = append(many, Chunk{Hash: mustHash(t, s), Size: uint32(i * 100)})
		}
	}
	assert.Equal(t, "6554007c9b5d0a5e7918f79596a1b68815c1407535585435f5735db761f21b88", XorbHash(many).String())
	assert.Equal(t, "a8640ab81d48854e00078e12b1ea8be5d90be0ffb5f73a15b7009981d093ddd8", FileHash(many).String())
	salt := mustHash(t, "0c33b4f4788ad18fb7c5fbec8fa2ce3c3208e2737d8d0fd7c4a1ff97b2c0d866")
	assert.Equal(t, "3e819808396e8c1960a11be2b952b3b824ab1f4c44a46ba7f753d54127fc1987", HMAC(XorbHash(many), salt).String())
}
