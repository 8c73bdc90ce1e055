package torchbin

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"

	"modelpub/core/tensors"
)

// storageTypes maps the torch storage classes a state dict pickles to their
// dtype. torch.UntypedStorage holds bytes: torch loads it as uint8.
var storageTypes = map[string]tensors.DType{
	"FloatStorage":    tensors.F32,
	"HalfStorage":     tensors.F16,
	"BFloat16Storage": tensors.BF16,
	"DoubleStorage":   tensors.F64,
	"LongStorage":     tensors.I64,
	"IntStorage":      tensors.I32,
	"ShortStorage":    tensors.I16,
	"CharStorage":     tensors.I8,
	"ByteStorage":     tensors.U8,
	"BoolStorage":     tensors.BOOL,
	"UntypedStorage":  tensors.U8,
}

// unsupportedStorages are torch storage classes that are harmless but have
// no safetensors dtype.
var unsupportedStorages = map[string]bool{
	"ComplexFloatStorage": true, "ComplexDoubleStorage": true,
	"QInt8Storage": true, "QUInt8Storage": true, "QInt32Storage": true,
	"QUInt4x2Storage": true, "QUInt2x4Storage": true,
}

// dtypeNames are the torch dtype objects (torch.float16, ...), which pickle
// as globals of module torch.
var dtypeNames = map[string]bool{
	"float32": true, "float": true, "float16": true, "half": true, "bfloat16": true,
	"float64": true, "double": true, "int64": true, "long": true, "int32": true,
	"int": true, "int16": true, "short": true, "int8": true, "uint8": true, "bool": true,
}

// rebuildFuncs are the torch._utils functions a state dict calls.
var rebuildFuncs = map[string]bool{
	"_rebuild_tensor_v2":            true,
	"_rebuild_parameter":            true,
	"_rebuild_parameter_with_state": true,
}

// allowedGlobal is the allow-list: exactly the globals that state dicts
// written by torch 1.x and 2.x reference.
func allowedGlobal(module, name string) bool {
	switch module {
	case "collections":
		return name == "OrderedDict"
	case "torch._utils":
		return rebuildFuncs[name]
	case "torch":
		_, storage := storageTypes[name]
		return storage || unsupportedStorages[name] || dtypeNames[name]
	}
	return false
}

func noGlobals(string, string) bool { return false }

// Values the allow-listed globals stand for. None of them runs anything:
// they only record what the pickle describes.
type (
	storageClass struct {
		name  string
		dtype tensors.DType
	}
	dtypeValue  struct{ name string }
	rebuildFunc struct{ name string }
	// storageRef is what a persistent id resolves to: one storage, lazily.
	storageRef struct {
		key   string
		dtype tensors.DType
		numel int64 // elements of dtype
		// Legacy view storages: the view is root[viewOffset:viewOffset+numel].
		root       string
		viewOffset int64
	}
	// tensorRef is what _rebuild_tensor_v2 returns.
	tensorRef struct {
		storage *storageRef
		offset  int64
		shape   []int64
		strides []int64
	}
)

func findClass(module, name string) (any, error) {
	if !allowedGlobal(module, name) {
		return nil, forbidden(module, name)
	}
	switch module {
	case "torch._utils":
		return &rebuildFunc{name: name}, nil
	case "torch":
		if d, ok := storageTypes[name]; ok {
			return &storageClass{name: name, dtype: d}, nil
		}
		if unsupportedStorages[name] {
			return nil, fmt.Errorf("%w: torch.%s has no safetensors dtype", ErrUnsupported, name)
		}
		return &dtypeValue{name: name}, nil
	}
	// collections.OrderedDict is resolved by gopickle itself.
	return nil, fmt.Errorf("%w: %s.%s", ErrForbiddenGlobal, module, name)
}

func (f *rebuildFunc) Call(args ...any) (any, error) {
	switch f.name {
	case "_rebuild_tensor_v2":
		// (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
		if len(args) < 6 || len(args) > 7 {
			return nil, fmt.Errorf("%w: _rebuild_tensor_v2 called with %d arguments", ErrCorrupt, len(args))
		}
		st, ok := args[0].(*storageRef)
		if !ok {
			return nil, fmt.Errorf("%w: _rebuild_tensor_v2 on %s, not a storage", ErrCorrupt, describe(args[0]))
		}
		off, err := toInt(args[1], "storage offset")
		if err != nil {
			return nil, err
		}
		shape, err := toInts(args[2], "size")
		if err != nil {
			return nil, err
		}
		strides, err := toInts(args[3], "stride")
		if err != nil {
			return nil, err
		}
		if len(shape) != len(strides) {
			return nil, fmt.Errorf("%w: a tensor with size %v and stride %v", ErrCorrupt, shape, strides)
		}
		return &tensorRef{storage: st, offset: off, shape: shape, strides: strides}, nil
	default:
		// _rebuild_parameter(data, requires_grad, backward_hooks)
		// _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state)
		want := 3
		if f.name == "_rebuild_parameter_with_state" {
			want = 4
		}
		if len(args) != want {
			return nil, fmt.Errorf("%w: %s called with %d arguments", ErrCorrupt, f.name, len(args))
		}
		t, ok := args[0].(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("%w: %s on %s, not a tensor", ErrCorrupt, f.name, describe(args[0]))
		}
		return t, nil
	}
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case *storageClass:
		return "torch." + v.name
	case *dtypeValue:
		return "torch." + v.name
	case *rebuildFunc:
		return "torch._utils." + v.name
	case string:
		if len(v) > 64 {
			return fmt.Sprintf("the string %q...", v[:64])
		}
		return fmt.Sprintf("the string %q", v)
	case int, bool, float64:
		return fmt.Sprint(v)
	}
	// never %v: gopickle's containers print themselves recursively, and
	// a pickle can make a list that holds itself
	return fmt.Sprintf("a %T", v)
}

func toInt(v any, what string) (int64, error) {
	switch v := v.(type) {
	case int:
		return int64(v), nil
	case *big.Int:
		if v.IsInt64() {
			return v.Int64(), nil
		}
		return 0, fmt.Errorf("%w: %s %s does not fit in 64 bits", ErrCorrupt, what, v)
	case bool: // gopickle reads INT "00"/"01" as bools
		if v {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%w: %s is %s, not an integer", ErrCorrupt, what, describe(v))
}

func toInts(v any, what string) ([]int64, error) {
	var items []any
	switch v := v.(type) {
	case *types.Tuple:
		items = *v
	case *types.List:
		items = *v
	default:
		return nil, fmt.Errorf("%w: tensor %s is %s, not a tuple", ErrCorrupt, what, describe(v))
	}
	if len(items) > 64 {
		return nil, fmt.Errorf("%w: a tensor with %d dimensions", ErrUnsupported, len(items))
	}
	out := make([]int64, len(items))
	for i, x := range items {
		n, err := toInt(x, what)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// unpickled is the result of the main pickle: the object tree and the
// storages its persistent ids named, in order of first reference.
type unpickled struct {
	root     any
	storages map[string]*storageRef
	order    []string
}

// unpickle runs gopickle on a pickle that scanPickle accepted. legacy
// selects the persistent-id form of the legacy format (with view metadata).
func unpickle(data []byte, legacy bool) (res *unpickled, err error) {
	res = &unpickled{storages: map[string]*storageRef{}}
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = findClass
	u.PersistentLoad = func(id any) (any, error) { return res.persistentLoad(id, legacy) }
	defer func() {
		// gopickle is not hardened against hostile input (odd DICT item
		// counts, unhashable OrderedDict keys...): a panic there is a
		// malformed file, not a bug of ours.
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("%w: malformed pickle (%s)", ErrCorrupt, clip(fmt.Sprint(r)))
		}
	}()
	root, err := u.Load()
	if err != nil {
		if isOurs(err) {
			return nil, err
		}
		// gopickle's messages can quote a whole object (%#v)
		return nil, fmt.Errorf("%w: malformed pickle: %s", ErrCorrupt, clip(err.Error()))
	}
	res.root = root
	return res, nil
}

func isOurs(err error) bool {
	for _, s := range []error{ErrCorrupt, ErrForbiddenGlobal, ErrUnsupported, ErrNotCheckpoint, ErrPickleLimit} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// persistentLoad resolves ('storage', storage_type, key, location, numel)
// and, in the legacy format, a sixth view_metadata item, None or
// (view_key, offset, view_size).
func (r *unpickled) persistentLoad(id any, legacy bool) (any, error) {
	t, ok := id.(*types.Tuple)
	if !ok || t.Len() == 0 {
		return nil, fmt.Errorf("%w: persistent id %s is not a tuple", ErrCorrupt, describe(id))
	}
	if kind, _ := t.Get(0).(string); kind != "storage" {
		return nil, fmt.Errorf("%w: persistent id of kind %s", ErrUnsupported, describe(t.Get(0)))
	}
	want := 5
	if legacy {
		want = 6
	}
	if t.Len() != want {
		return nil, fmt.Errorf("%w: storage persistent id with %d items, want %d", ErrCorrupt, t.Len(), want)
	}
	cls, ok := t.Get(1).(*storageClass)
	if !ok {
		return nil, fmt.Errorf("%w: storage type is %s", ErrCorrupt, describe(t.Get(1)))
	}
	key, ok := t.Get(2).(string)
	if !ok || key == "" || len(key) > 256 {
		return nil, fmt.Errorf("%w: storage key is %s", ErrCorrupt, describe(t.Get(2)))
	}
	numel, err := toInt(t.Get(4), "storage size")
	if err != nil {
		return nil, err
	}
	es := int64(cls.dtype.Bits() / 8)
	if numel < 0 || numel > math.MaxInt64/es {
		return nil, fmt.Errorf("%w: storage %q declares %d elements", ErrCorrupt, key, numel)
	}
	root := &storageRef{key: key, dtype: cls.dtype, numel: numel, root: key}
	if err := r.add(root); err != nil {
		return nil, err
	}
	if !legacy || t.Get(5) == nil {
		return root, nil
	}
	vm, ok := t.Get(5).(*types.Tuple)
	if !ok || vm.Len() != 3 {
		return nil, fmt.Errorf("%w: storage view metadata is %s", ErrCorrupt, describe(t.Get(5)))
	}
	vkey, ok := vm.Get(0).(string)
	if !ok || vkey == "" || len(vkey) > 256 {
		return nil, fmt.Errorf("%w: storage view key is %s", ErrCorrupt, describe(vm.Get(0)))
	}
	voff, err := toInt(vm.Get(1), "storage view offset")
	if err != nil {
		return nil, err
	}
	vsize, err := toInt(vm.Get(2), "storage view size")
	if err != nil {
		return nil, err
	}
	if voff < 0 || vsize < 0 || voff > numel || vsize > numel-voff {
		return nil, fmt.Errorf("%w: storage view %q [%d:+%d] is outside storage %q of %d elements", ErrCorrupt, vkey, voff, vsize, key, numel)
	}
	view := &storageRef{key: vkey, dtype: cls.dtype, numel: vsize, root: key, viewOffset: voff}
	if err := r.add(view); err != nil {
		return nil, err
	}
	return view, nil
}

func (r *unpickled) add(s *storageRef) error {
	if old, ok := r.storages[s.key]; ok {
		if *old != *s {
			return fmt.Errorf("%w: storage %q is declared twice differently (%s×%d, %s×%d)", ErrCorrupt, s.key, old.dtype, old.numel, s.dtype, s.numel)
		}
		return nil
	}
	if len(r.storages) >= 1<<20 {
		return fmt.Errorf("%w: more than %d storages", ErrUnsupported, 1<<20)
	}
	r.storages[s.key] = s
	r.order = append(r.order, s.key)
	return nil
}

// plan walks the unpickled tree and lists its tensors in state-dict order.
// Nested dicts, lists and tuples are flattened with "." ("model.layer.0");
// other values (ints, strings, None, dtypes) are listed in skipped.
func (r *unpickled) plan() (ts []Tensor, skipped []string, err error) {
	p := &planner{seen: map[any]bool{}, names: map[string]bool{}, storages: r.storages}
	switch r.root.(type) {
	case *types.OrderedDict, *types.Dict:
	case *tensorRef:
		return nil, nil, fmt.Errorf("%w: the file holds a single tensor, not a state dict", ErrUnsupported)
	default:
		return nil, nil, fmt.Errorf("%w: the pickle holds %s, not a state dict", ErrUnsupported, describe(r.root))
	}
	if err := p.walk("", r.root, 0); err != nil {
		return nil, nil, err
	}
	byRoot := map[string][]int{}
	for i, t := range p.tensors {
		byRoot[t.StorageKey] = append(byRoot[t.StorageKey], i)
	}
	for _, idx := range byRoot {
		k := len(idx)
		if k < 2 {
			continue
		}
		// The k views of one storage share one array of their names,
		// twice over: the others of the j-th are the k-1 names after it,
		// so a storage seen by many tensors (a pickle can make a million
		// views of one storage) costs 2k names, not k².
		names := make([]string, 2*k)
		for j, i := range idx {
			names[j] = p.tensors[i].Name
			names[j+k] = p.tensors[i].Name
		}
		for j, i := range idx {
			p.tensors[i].SharesStorageWith = names[j+1 : j+k : j+k]
		}
	}
	return p.tensors, p.skipped, nil
}

type planner struct {
	seen     map[any]bool
	names    map[string]bool
	storages map[string]*storageRef
	tensors  []Tensor
	skipped  []string
}

const maxDepth = 32

// maxName bounds a flattened tensor or entry name ("a.b.0.weight"), so
// that long keys repeated down nested containers cannot make names of
// megabytes.
const maxName = 4096

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func (p *planner) walk(name string, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: %q is nested more than %d levels deep", ErrUnsupported, name, maxDepth)
	}
	switch v := v.(type) {
	case *tensorRef:
		return p.tensor(name, v)
	case *types.OrderedDict, *types.Dict, *types.List, *types.Tuple:
		if p.seen[v] {
			return fmt.Errorf("%w: %q refers back to a container already listed", ErrUnsupported, name)
		}
		p.seen[v] = true
	default:
		if name != "" {
			p.skipped = append(p.skipped, name)
		}
		return nil
	}
	var visit func(k, x any) error = func(k, x any) error {
		ks, err := keyString(k)
		if err != nil {
			return fmt.Errorf("%w: %q has a key that is %s", ErrUnsupported, name, err)
		}
		if len(name)+1+len(ks) > maxName {
			return &LimitError{Limit: "name", Max: maxName}
		}
		return p.walk(join(name, ks), x, depth+1)
	}
	switch v := v.(type) {
	case *types.OrderedDict:
		for e := v.List.Front(); e != nil; e = e.Next() {
			ent := e.Value.(*types.OrderedDictEntry)
			if err := visit(ent.Key, ent.Value); err != nil {
				return err
			}
		}
	case *types.Dict:
		// gopickle keeps every SETITEM; Python keeps the first position and
		// the last value.
		last := map[any]int{}
		for i, ent := range *v {
			if hashable(ent.Key) {
				last[ent.Key] = i
			}
		}
		done := map[any]bool{}
		for _, ent := range *v {
			if hashable(ent.Key) {
				if done[ent.Key] {
					continue
				}
				done[ent.Key] = true
				ent = (*v)[last[ent.Key]]
			}
			if err := visit(ent.Key, ent.Value); err != nil {
				return err
			}
		}
	case *types.List:
		for i, x := range *v {
			if err := visit(i, x); err != nil {
				return err
			}
		}
	case *types.Tuple:
		for i, x := range *v {
			if err := visit(i, x); err != nil {
				return err
			}
		}
	}
	return nil
}

func hashable(k any) bool {
	switch k.(type) {
	case string, int, bool, float64:
		return true
	}
	return false
}

func keyString(k any) (string, error) {
	switch k := k.(type) {
	case string:
		return k, nil
	case int:
		return fmt.Sprint(k), nil
	}
	return "", fmt.Errorf("%s", describe(k))
}

// tensor validates one tensor against its storage and adds it to the plan.
func (p *planner) tensor(name string, t *tensorRef) error {
	if name == "" {
		return fmt.Errorf("%w: a tensor with an empty name", ErrUnsupported)
	}
	if p.names[name] {
		return fmt.Errorf("%w: two tensors are named %q", ErrUnsupported, name)
	}
	if strings.ContainsRune(name, 0) {
		return fmt.Errorf("%w: tensor name %q contains NUL", ErrUnsupported, name)
	}
	p.names[name] = true
	st := t.storage
	root := p.storages[st.root]
	if root == nil {
		return fmt.Errorf("%w: tensor %q refers to unknown storage %q", ErrCorrupt, name, st.root)
	}
	n, err := checkView(t.shape, t.strides, t.offset, st.numel)
	if err != nil {
		return fmt.Errorf("%w: tensor %q (%s, size %v, stride %v, offset %d, storage %q of %d elements): %v",
			ErrCorrupt, name, st.dtype, t.shape, t.strides, t.offset, st.key, st.numel, err)
	}
	es := int64(st.dtype.Bits() / 8)
	if n > math.MaxInt64/es {
		return fmt.Errorf("%w: tensor %q has %d elements", ErrCorrupt, name, n)
	}
	p.tensors = append(p.tensors, Tensor{
		Name:       name,
		DType:      st.dtype,
		Shape:      t.shape,
		Strides:    t.strides,
		StorageKey: st.root,
		Offset:     st.viewOffset + t.offset,
		Contiguous: isContiguous(t.shape, t.strides),
	})
	return nil
}

// checkView checks that every element of a view lies inside a storage of
// numel elements, without overflow, and returns the view's element count.
func checkView(shape, strides []int64, offset, numel int64) (int64, error) {
	if offset < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative size")
		}
		if strides[i] < 0 {
			return 0, fmt.Errorf("negative stride")
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("element count overflows")
		}
		n *= d
	}
	if n == 0 {
		if offset > numel {
			return 0, fmt.Errorf("offset past the end of the storage")
		}
		return 0, nil
	}
	last := offset // index of the last element
	for i, d := range shape {
		if strides[i] != 0 && d-1 > (math.MaxInt64-last)/strides[i] {
			return 0, fmt.Errorf("strides overflow")
		}
		last += (d - 1) * strides[i]
	}
	if last >= numel {
		return 0, fmt.Errorf("reaches element %d, past the end of the storage", last)
	}
	return n, nil
}

// isContiguous reports whether a view is laid out row-major without gaps,
// ignoring the strides of size-1 dimensions, as torch does.
func isContiguous(shape, strides []int64) bool {
	for _, d := range shape {
		if d == 0 {
			return true
		}
	}
	want := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] != 1 && strides[i] != want {
			return false
		}
		want *= shape[i]
	}
	return true
}
