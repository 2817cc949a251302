"""The score of the last mutmut run (``scripts/mutation.sh``): per module and in all,
then every survivor by name (``mutmut show NAME`` prints it as a diff).

score = killed / (mutants - equivalent), where a mutant that times out counts as
killed (as mutmut counts it) and one that no test reaches counts as a survivor.
"by time" counts the killed mutants that some test ran far past its unmutated time
for (tests/conftest.py fails such a test and lists the mutant in
mutants/too-slow.txt): they count as killed too, as mutmut's own timeouts do.
Equivalent mutants (a change that cannot alter behaviour) are listed in
EQUIVALENT with the reason, and left out of the score.

EQUIVALENT is keyed by the mutant's place in the code without its module
(``mutant_key``): "Class.method#N" or "function#N", N being mutmut's number for
the mutant within that function, so a function moved to another module keeps its
entries. The script fails (exit status 1, after the score) when an entry matches no
mutant of the run (orphaned: the function was renamed, removed or left out of
[mutmut] only_mutate) or matches mutants in two modules (ambiguous: two modules
define the same name). tests/test_mutation_keys.py checks the same without a run.
"""
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

TIMED_OUT = {24, 36, 152, 255, -24, -9}  # mutmut's timeouts (SIGXCPU, or killed past the wall limit)
KILLED = {1, 3, -11} | TIMED_OUT  # test failure, pytest error, crash, timeout
SURVIVED = {0, 5, 33}  # tests pass, or no test reaches the mutant

CLASS_SEPARATOR = "ǁ"  # (U+01C1) what mutmut puts around a class name: xǁClassǁmethod


def split_mutant(name):
    """mutmut's name of a mutant -> (module, key), the key being its place in the code
    without the module: ("minipixel.layers", "MaskedConv2d.start_at#11") for
    "minipixel.layers.xǁMaskedConv2dǁstart_at__mutmut_11", ("minipixel.sampling",
    "_sample_wavefront#85") for "minipixel.sampling.x__sample_wavefront__mutmut_85"."""
    # mutmut's own split (mutmut.utils.format_utils): the name up to the first "__mutmut_"
    # is the module and the mangled function, which holds no "."
    function, marker, number = name.partition("__mutmut_")
    module, _, mangled = function.rpartition(".")
    if mangled.startswith("x" + CLASS_SEPARATOR):
        cls, separator, method = mangled[2:].partition(CLASS_SEPARATOR)
        qualname = f"{cls}.{method}" if separator and cls and method else ""
    else:
        qualname = mangled[2:] if mangled.startswith("x_") else ""
    if not (marker and number.isdigit() and module and qualname):
        raise ValueError(f"not a mutmut mutant name: {name!r}")
    return module, f"{qualname}#{number}"


def mutant_key(name):
    """The key of EQUIVALENT for mutmut's name of a mutant (``split_mutant``)."""
    return split_mutant(name)[1]


# "Class.method#N" or "function#N" (mutant_key) -> why that mutant cannot change what the code does
EQUIVALENT = {
    "quantize#5": 'kind not in "XXfiubXX": a dtype kind is one letter, and "X" is none',
    "binarize#5": 'kind not in "XXfiubXX": a dtype kind is one letter, and "X" is none',
    "ImageSet.__post_init__#29": 'kind not in "XXiuXX": as above',
    "sample_naive#51": "labels_to_inputs(..., dtype=None): the assignment into x casts "
                       "to x's dtype, and k/(L-1) rounded via float64 is the float32 quotient",
    "SGD.__init__#10": "array_module(None).zeros_like(p): NumPy's zeros_like dispatches "
                       "on p (__array_function__), so it returns p's kind of array",
    **{f"Adam.__init__#{n}": "array_module(None).zeros_like: dispatches on its argument "
                             "(__array_function__), as SGD's"
       for n in (18, 21, 28)},
    "Adam.__init__#23": "flat[1] for flat[0]: the gradients' flat array has the parameters' "
                        "size, dtype and device, and is only read for those",
    **{f"ResidualBlock.forward_at#{n}": "i or j None in the calls to conv1/conv3: 1x1 layers "
                                        "ignore the position" for n in (2, 3, 28, 29)},
    **{f"ResidualBlock.start_at#{n}": "height or width None: no child's start_at reads them"
       for n in (2, 3)},
    **{f"PixelCNN.forward_at#{n}": "i or j None in the calls to head1/head2/conv_out: 1x1 layers "
                                   "ignore the position" for n in (21, 22, 33, 34, 42, 43)},
    **{f"PixelCNN.forward_many#{n}": "positions None in the calls to head1/head2/conv_out: "
                                     "1x1 layers ignore them" for n in (17, 27, 34)},
    **{f"GatedLayer.forward_at#{n}": "i, j or g None in the call to drop (29-31) or gate_h (37-39): "
                                     "Dropout's and Gate's forward_at ignore them"
       for n in (29, 30, 31, 37, 38, 39)},
    **{f"GatedLayer.forward_at#{n}": "i or j None in the call to conv_out: 1x1 layers ignore the position"
       for n in (46, 47)},
    "GatedLayer.forward_at#53": "group None writes every channel of h_at: earlier groups get the same "
                                "sums again, later ones are read (by the next layer's mask-HB centre tap, "
                                "at weight 0) only before their own step rewrites them",
    **{f"GatedLayer.start_at#{n}": "height or width None: no child's start_at reads them"
       for n in (2, 3)},
    "GatedLayer.start_at#9": "the first layer gets an h canvas too, which it never reads "
                             "(it reads the image canvas; memory only)",
    "GatedPixelCNN.forward_at#26": "group None writes every channel of skip_at: earlier groups get the "
                                   "same sums again, later ones are read by no 1x1 mask-B step before "
                                   "their own step rewrites them",
    **{f"GatedPixelCNN.forward_at#{n}": "i or j None in the calls to head/conv_out: 1x1 layers "
                                        "ignore the position" for n in (49, 50, 66, 67)},
    **{f"GatedPixelCNN.forward_at#{n}": "i, j or g None in the call to relu: ReLU's forward_at "
                                        "ignores them" for n in (57, 58, 59)},
    **{f"Layer.load_parameters#{n}": "asarray without dtype: the assignment into p casts, "
                                     "rounding the same" for n in (21, 23)},
    **{name: "array_module(None): NumPy's functions and ufuncs hand strict/CuPy arrays to their own module"
       for name in ("ReLU.forward_at#2", "ReLU.forward#2", "ReLU.backward#4")},
    "MaskedConv2d.start_at#11": "kernel >= 1: a 1x1 layer then fills W_above/W_row, which it never reads",
    **{name: "kernel > 2: conv_mask refuses even kernels, so > 1 and > 2 agree"
       for name in ("MaskedConv2d.start_at#12",
                    "MaskedConv2d.start_at#80",
                    "MaskedConv2d.backward#144")},
    "MaskedConv2d.start_at#112": 'row_at = "": always set at (i, 0, 0) before it is read',
    "MaskedConv2d.start_at#79": "kernel >= 1: a 1x1 layer then gets tap offsets and a tap "
                                "key, which its forward_many never reads",
    **{f"MaskedConv2d.start_at#{n}": "the tap key's label: every layer's key has the same one"
       for n in (86, 87)},
    **{f"Canvas.write_many#{n}": "the index key's label: every canvas's key has the same one"
       for n in (12, 13)},
    **{f"ResidualBlock.forward_many#{n}": "positions None in the calls to conv1/conv3: "
                                          "1x1 layers ignore them"
       for n in (3, 23)},
    "_sample_wavefront#85": "labels_to_inputs(..., dtype=None): the write into the canvas "
                            "casts, and k/(L-1) rounded via float64 is the float32 quotient "
                            "(as sample_naive's 51)",
    **{f"_sample_wavefront#{n}": "mid >= start / mid <= stop: an empty write or draw "
                                 "(no known or no drawn row in flight) changes nothing"
       for n in (81, 97)},
    **{name: "reshape(..., -2): any negative size is 'the rest'"
       for name in ("MaskedConv2d.forward_at#36", "MaskedConv2d.forward_row#50",
                    "Layer.pack_parameters#31", "gather_index#69",
                    "gather_index#78", "MaskedConv2d.backward#49",
                    "MaskedConv2d.backward#108",
                    "MaskedConv2d.weight_matrix#17",
                    "MaskedConv2d.forward#33", "MaskedConv2d._cols#36",
                    "Canvas.__init__#36",
                    *(f"_sample_wavefront#{n}" for n in (128, 131, 138, 150)),
                    *(f"MaskedConv2d.forward_many#{n}" for n in (16, 49, 77, 109)))},
    "MaskedConv2d.forward_row#11": "relu = None: only its truth value is read (False and None agree)",
    **{f"ResidualBlock.__init__#{n}": 'mask argument dropped: MaskedConv2d\'s default is "B"'
       for n in (40, 56, 70)},
    "im2col_loop#13": "out.reshape(None): NumPy keeps the shape, and out is always "
                      "(B, H, W, T, C)",
    **{f"scratch#{n}": "another key for the thread's buffer dict: used consistently"
       for n in (2, 6, 7)},
    "scratch#18": '= "" for = None before allocating: it only drops the old reference',
    "Adam._update#2": "array_module(None).sqrt: a ufunc, dispatches on its argument "
                      "(__array_ufunc__), as losses' exp/log below",
    "draw#3": "array_module(None).exp/cumsum/minimum: dispatch on their argument, "
              "as above",
    "draw#5": "logits.astype(None): None is float64, the dtype asked for",
    **{f"_draw_buffers#{n}": "the comparison buffer as float64, not bool: its 0.0/1.0 summed into "
                             "the uint8 labels gives the same counts (memory only)" for n in (17, 19)},
    "_cached_row#25": "labels_to_inputs(..., dtype=None): the canvas assignment casts "
                      "to its dtype, and k/(L-1) rounded via float64 is the float32 "
                      "quotient (as sample_naive 51)",
    "SGD.load_state_dict#3": "asarray(..., dtype=None): the assignment into the buffer casts",
    "SGD.load_state_dict#5": "asarray(...) without dtype: the assignment into the buffer casts",
    "_load#15": "asarray(..., dtype=None): the assignment into the buffer casts (Adam's and Average's state)",
    "_load#17": "asarray(...) without dtype: the assignment into the buffer casts",
    "SGD.finite#5": "array_module(None).isfinite: a ufunc, dispatches on its argument "
                    "(__array_ufunc__), as Adam._update's sqrt",
    "_describe_run#63": "a missing clock read as 1 s, not 0: both print as 0 minutes",
    "install#12": 'c in "XX-_XX": the added "X" is a letter, which isalnum() already allows',
    **{f"Parser.nearest#{n}": 'split("=", n)[0] with another n: [0] is the text before the first "="'
       for n in (5, 8)},
    **{f"Parser.nearest#{n}": "lstrip(None) / rstrip(\"-\") before split(\"-\") for the initials: "
                              "the empty parts that dashes leave add no letter"
       for n in (31, 32)},
    **{f"Parser.nearest#{n}": "get_close_matches' n (default 3, or 2) for 1: [0] is the best "
                              "match either way" for n in (46, 48)},
    "Parser.nearest#47": "get_close_matches' cutoff left out: its default is the 0.6 given",
    **{f"Parser.__init__#{n}": "allow_abbrev None (given, or setdefault's own default) for False: argparse "
                               "only tests it for truth" for n in (2, 4)},
    "document#11": 'getattr(type, "__name__", "XXXX"): a type without a name ends with " value" neither way',
    **{f"deflate_npz#{n}": "the archive's compression or each member's compress_type dropped: "
                           "either one alone deflates every member"
       for n in (11, 16, 19)},
    "kind_of_file#16": 'decode("UTF-8"): codec names are case-insensitive',
    "local_size#11": 'get(name, "XXXX").isdigit(): False for a missing name, as "" is',
    "Single.abort#1": "the default code of an abort that does nothing (one process)",
    "_padded#2": "array_module(None).pad: np.pad dispatches on x "
                 "(__array_function__), so it returns x's kind of array",
    "conv2d_reference_backward#2": "array_module(None).zeros_like: dispatches on "
                                   "its argument, as above",
    "conv2d_reference#3": "k = Wm.shape[1]: kernels are square (k x k)",
    "conv2d_reference_backward#5": "k = Wm.shape[1]: kernels are square (k x k)",
    "conv2d_reference_backward#28": "reshape(-2, C): NumPy reads any negative "
                                    "size as 'the rest'",
    "conv2d_reference_backward#35": "reshape(-2, C): NumPy reads any negative "
                                    "size as 'the rest'",
    "scatter_index#2": 'cache key "XXscatterXX": any label that differs from the '
                       "gather's key names the same entry",
    "scatter_index#3": 'cache key "SCATTER": as above',
    "scatter_index#18": "gather_index(..., xp omitted): its default is NumPy, "
                        "which the line passed",
    "group_slices#12": "range(colors + 2): the extra start entry is never read",
    "live_taps#9": "mask.shape[1] for shape[0]: masks are k x k",
    "live_taps#12": "reshape(..., -2): any negative size is 'the rest'",
    "_check#13": 'kind not in "XXiuXX": a dtype kind is one letter, and "X" is none',
    "log_softmax#2": "array_module(None).exp/log: ufuncs dispatch on their argument "
                     "(__array_ufunc__), same results and operation counts on the stand-in",
    "nll_per_image#6": "array_module(None).take_along_axis: dispatches on its argument "
                       "(__array_function__), and np.intp is the same dtype everywhere",
    **{f"{name}#{n}": "reshape(-2, ...): NumPy, the stand-in and CuPy read any negative "
                      "size as 'the rest'"
       for name, n in (("nll_per_image", 27), ("softmax_cross_entropy", 38), ("softmax_cross_entropy", 47),
                       ("softmax_cross_entropy", 62))},
    "_check_state#9": "the step's default 1 for 0: the default is only checked, "
                      "never used, and 1 passes the check as 0 does",
    "_check_state#16": "the clock's default 1.0 for 0.0: as above",
    "_check_state#31": 'float("INF"): Python parses it as float("inf")',
    "_check_optimizer_state#7": 'split("/") with another maxsplit: [0] is the text '
                                'before the first "/"',
    "_check_optimizer_state#10": "as above",
    "_check_optimizer_state#44": 'kind not in "XXiuXX": as for losses',
    **{f"_check_optimizer_state#{n}": 'split("/") variants after the key-set check: '
                                      'every key is "<moment>/<name>" with no other "/"'
       for n in (64, 65, 67)},
    **{f"trim_steps#{n}": 'split(",") with another maxsplit: the line kept has '
                           "exactly 3 commas, and [0] is the text before the first"
       for n in (15, 18, 24, 27)},
    "_loop#77": "ranks.size >= 1: one process's agree() returns what it is given, "
                "so the flags come back unchanged",
    "_loop#82": "agree([1, ...]): the first value is summed and then dropped by [1:]",
    "Run.evaluate_split#14": "an empty slice's nll_nats 1.0: ranks send nll_nats * images, "
                             "0 either way (an empty validation set is refused before)",
    "Run.evaluate_split#17": "an empty slice's images 1: as above, nll_nats is 0 there",
    "Run.evaluate_split#29": "ranks.size >= 1: one process then computes (nll * N) / N, "
                             "its own mean to the last bit or one rounding off",
    "Layer.__init__#2": "grads None: a layer reads grads only by the names of its own "
                        "params, and every layer with params sets its own grads",
    **{f"MaskedConv2d.__init__#{n}": "the mask kept as float64: only gradcheck reads it, "
                                     "as 0/1 factors on float64 copies (same values)"
       for n in (45, 47)},
    **{f"MaskedConv2d.__init__#{n}": 'forward_at\'s (79) or forward_many\'s (80) state '
                                     'starts as "": start_at sets all of it before either '
                                     "reads any (forward_many sets y_many itself); without "
                                     "start_at both fail" for n in (79, 80)},
    **{f"MaskedConv2d.backward#{n}": "the ReLU-masked gradient written to a new array, "
                                     "or to a scratch buffer of another name: the same "
                                     "values (memory only)"
       for n in (57, 60, 61, 69, 70, 110, 118, 119)},
    "MaskedConv2d.backward#84": "first = None: as falsy as False, and only tested for truth",
    "ResidualBlock.__init__#75": 'canvas2 starts as "": start_at sets it before '
                                 "forward_at reads it, and without start_at None fails the "
                                 "same way (AttributeError)",
    **{f"Run.__init__#{n}": "time_up starts as None or True: _loop sets it after every "
                            "step, before at_evaluation_point (its only reader) runs"
       for n in (111, 112)},
    "Dropout.mask#19": "> for >=: a float32 draw equals the rate with probability "
                       "2^-24 at most (none for a rate that is no multiple of 2^-24)",
    "Dropout.__init__#2": "rate 1.0 at the start: without keys the layer is off, and "
                          "set_dropout sets the rate with the keys",
    "Run.__init__#115": 'dropout starts as "": next_batch sets it before _loop reads it',
    **{f"dropout_keys#{n}": "asarray of the positions without dtype: a range of ints is "
                            "int64 already"
       for n in (3, 5)},
    "file_checksum#14": "f.read(None) reads the whole file: the same bytes hashed, only in one piece",
    **{f"_fetch_once#{n}": "another case of a header name: urllib's Request.add_header "
                           "capitalizes every name (User-agent, Range) before it is sent"
       for n in (10, 11, 14, 15)},
    **{f"_open_image#{n}": "a format name in lower case: Image.open upper-cases the names in formats"
       for n in (16, 18)},
    **{f"_decode_image#{n}": "resize's filter left out or None: Pillow's default for L and RGB "
                             "images (the only modes resized) is BICUBIC"
       for n in (52, 54)},
    **{f"_decode_image#{n}": "getattr(None or Image, a name Image lacks, Image): Image.BICUBIC, the "
                             "same filter (3) as Image.Resampling.BICUBIC"
       for n in (55, 61, 62, 63)},
    "_decode_image#75": "reshape(..., -2): any negative size is 'the rest'",
    "_folder_shape#2": "largest starts at 1: Pillow opens no image of 0 pixels, so max() replaces it",
    "_folder_shape#22": "decode=None: only its truth value is read (None and False agree)",
    **{f"read_image_folder#{n}": "channels None for the decoding: a grey file is then one channel, "
                                 "which the assignment spreads to R = G = B, as convert('RGB') does"
       for n in (53, 57)},
    **{f"_amat_line_fast#{n}": "more lines left to the careful parser, which reads them the same, "
                               "only slower" for n in (3, 16)},
    "read_amat#17": "every line left to the careful parser: the same values, only slower",
    "read_amat#43": "reshape(-2, ...): any negative size is 'the rest'",
    **{f"_amat_line_careful#{n}": "the decode of a word that parsed as a number: it is ASCII, so "
                                  "the codec's case and the error handler never matter"
       for n in (25, 27, 28, 29)},
    "_amat_line_careful#30": "astype(None): the assignment into the uint8 images casts",
    "read_mnist_csv#36": "reshape(-2, ...): any negative size is 'the rest'",
    "first_unparsable#8": 'decode("ASCII"): codec names are case-insensitive',
    "_Dtype.__init__#1": 'the default byte order "XX|XX": only dtype() reads it, as order in "<>", False for "|" too',
    **{name: 'decode/encode("LATIN1"): codec names are case-insensitive'
       for name in ("_Dtype.__setstate__#13", "_Cifar10Unpickler._dtype#8", "_Cifar10Unpickler._latin1_encode#8")},
    "_Dtype.dtype#4": 'newbyteorder for "|" and "=" too: "|" keeps the byte order and "=" is native, '
                      "which np.dtype(name) already is",
    "_Dtype.dtype#7": 'order in "XX<>XX": the order is "<", ">", "|" or "=" (__setstate__ refuses others), never "X"',
    **{f"_Cifar10Unpickler._dtype#{n}": "align/copy defaults: the stand-in takes them as numpy.dtype does "
                                        "and never reads them" for n in (1, 2)},
    "_read_cifar10_batch#29": "b'data' kept as the checked ndarray subclass: read_cifar10, the only caller, "
                              "np.concatenate's the images into a plain ndarray",
    "_read_cifar10_batch#54": 'kind not in "XXiuXX": a dtype kind is one letter, and "X" is none',
    "_read_cifar10_batch#80": "reshape(-2, ...): any negative size is 'the rest'",
    "_check_member#8": 'a non-link\'s target "XXXX" for "": it is neither absolute nor holds ".."',
    "has_split#3": 'rpartition(":"): no dataset name or split holds a ":", so one ":" splits the same, '
                   "and a spec with none or several names no dataset either way",
    "class_names#9": 'split(":") without maxsplit: only the part before the first ":" is used, and it is the same',
    "class_names#10": 'rsplit(":", 1): no dataset name or split holds a ":", so one ":" splits the same, '
                      "and a spec with several names no dataset either way",
    "class_names#12": 'split(":", 2): only the part before the first ":" is used, and it is the same',
    "_input#12": "|x| <= 0.05 for < 0.05: an entry of exactly +-0.05 is then set to 0.05 * sign(x), itself",
    "_input#14": "an exact 0 moved to -0.05 instead of 0.05: as far from the ReLU's kink, either side will do",
    **{f"FolderLock.{method}#{n}": "held = None: only its truth value is read (None and False agree)"
       for method, n in (("__init__", 6), ("release", 1))},
    **{f"FolderLock.{method}#{n}": '_fd = "" while the lock is not held: it is read only while held, '
                                   "after acquire sets it" for method, n in (("__init__", 8), ("release", 4))},
    "FolderLock.acquire#29": "os.read(fd, 65) for 64: only the file's first word is read, a process id far "
                             "shorter than 64 bytes (the lock writes nothing else there)",
    "FolderLock.acquire#8": "101 tries for 100: a try is repeated only when the lock file was replaced between "
                            "its open and its lock, by a release in that instant; no run comes near 100",
    "FolderLock.acquire#46": "same = None when the file is gone: only its truth value is read (None and False agree)",
    "_looks_like_path#2": '"XX/XX" for "/": os.sep (Linux) or os.altsep (Windows) is "/" too, and any spec '
                          'holding "XX/XX" holds "/"',
    "load#13": 'rpartition(":"): no dataset name holds a ":", so a spec with one ":" splits the same and one '
               "with none or several is no dataset either way (the same error, naming the spec)",
    **{f"ranks#{n}": 'another default device than "cpu": it is only compared with "gpu"' for n in (1, 2)},
    "Run.__init__#13": 'saved, optim_state and new_lr start as "" for a new run: _build_optimizer reads each only '
                       "when resumed (a resume sets all three)",
    "read_images#8": 'read_cifar10(path) without "train": its split defaults to "train"',
    "read_npz#23": 'kind not in "XXiuXX": a dtype kind is one letter, and "X" is none',
    "loss_and_gradients#58": "len(models) >= 1 for > 1: with the one model there is no other to add, and "
                             "model.gradients() only reads",
    **{f"_read_npy#{n}": 'order "f" or "c" for "F" or "C": NumPy reads the order letter in either case'
       for n in (40, 42)},
    "_sample_graph#19": "model.canvas(n, None, W): inside rolling_maps() a canvas keeps k // 2 + 2 rows, "
                        "whatever the height",
    "_sample_graph#64": "known=None for False in the captured row: only its truth is read",
    'Server.handle_error#2': "socketserver's BaseServer.handle_error never reads its request argument: the log line "
                             'names client_address only',
    'Handler._drop#7': 'at left == 0 the loop reads rfile.read(0), which returns b"" at once and ends it: nothing '
                       'more is read',
    'Handler._drop#15': 'read(n) on the buffered rfile blocks until n bytes or EOF: 128 KiB reads drain the same '
                        'bytes and end at the same moment',
    'Handler._drop#16': 'read(n) on the buffered rfile blocks until n bytes or EOF: 128 KiB reads drain the same '
                        'bytes and end at the same moment',
    'Handler._field#87': 'number() checks channel against RANGES["channel"] (0..2) first, so value >= 3 never holds '
                         'and the entry is never read',
    'Handler._field#100': 'number() checks channel against RANGES["channel"] (0..2) first, so value >= 3 and value '
                          '>= 4 are both never true',
    'Handler._json#16': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads content-type as '
                        'Content-Type',
    'Handler._json#17': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads CONTENT-TYPE as '
                        'Content-Type',
    'Handler._send_body#2': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads content-length'
                            ' as Content-Length',
    'Handler._send_body#3': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads CONTENT-LENGTH'
                            ' as Content-Length',
    'Handler._send_body#6': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads cache-control '
                            'as Cache-Control',
    'Handler._send_body#7': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads CACHE-CONTROL '
                            'as Cache-Control',
    'Handler._send_body#11': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads it as '
                             'X-Content-Type-Options',
    'Handler._send_body#12': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads it as '
                             'X-Content-Type-Options',
    'Handler._send_body#24': "HTTP field names are case-insensitive (RFC 9110 5.1), and http.server's send_header "
                             'lower-cases the name it checks',
    'Handler._send_body#25': "HTTP field names are case-insensitive (RFC 9110 5.1), and http.server's send_header "
                             'lower-cases the name it checks',
    '_Wavefront.__init__#15': 'every is only used in steps % every == 0, and steps % -e == 0 exactly when steps % e '
                              '== 0',
    '_Wavefront.canvas#3': "sample's wavefront sampler passes the model's own height, and model.canvas fills None "
                           'with that same height',
    '_Wavefront.canvas#4': "sample's wavefront sampler passes the model's own width, and model.canvas fills None "
                           'with that same width',
    '_Wavefront.canvas#7': "sample's wavefront sampler passes the model's own width, and model.canvas fills a "
                           'missing width with it',
    '_Wavefront.forward_many#7': 'steps is only used in steps % every == 0, and -k % every == 0 exactly when k % '
                                 'every == 0',
    'field#33': "PixelCNNConfig's default height is 28, FIELD_SIZE: the same model",
    'field#34': "PixelCNNConfig's default width is 28, FIELD_SIZE: the same model",
    'field#47': 'np.dtype(None) is float64: build_model(dtype=None) builds the same float64 model',
    'field#49': "build_model's default seed is 0: the same weights",
    'distribution#2': 'astype(None) is astype(float64): the same array',
    'nll_map#31': 'astype(None) is astype(float64): the same array',
    'logits#9': "labels_to_inputs's default xp is numpy, and the server loads every model on the CPU (load_model's "
                'default), so model.xp is numpy',
    '_picture#16': 'Pillow\'s Image.open upper-cases each name in formats: ("png",) is ("PNG",)',
    '_picture#32': 'the picture\'s reader opens it by its content, not its name, and any error names it "image" '
                   'whatever the file is called',
    '_picture#33': 'the picture\'s reader opens it by its content, not its name, and any error names it "image" '
                   'whatever the file is called',
    'image_of#26': '"XXiuXX" adds only the letter X, which is no NumPy dtype kind: the same dtypes pass',
    'stream#52': 'rows_per_frame is only used in count % (rows_per_frame * W * C) == 0, which holds for -k exactly '
                 'when for k',
    'stream#55': 'last starts at 0.0 or 1.0 and is read as perf_counter() - last; perf_counter counts from boot, so '
                 'either is far past FRAME_GAP',
    'stream#73': "< and <= differ only when the time since the last frame equals FRAME_GAP to the clock's last digit",
    'stream#93': 'the sampler looks every C sub-pixels (and at whole rows), so count is always a multiple of C and '
                 'count / C == count // C',
    'stream#127': "sample's default batch_size is 64 = MAX_IMAGES: n <= 64 images are one batch either way",
    'RequestError.__init__#2': "nothing reads the exception's args: _dispatch answers err.message and err.status, "
                               'and every RequestError is caught there',
    'sampling_job#1': 'its one caller, Handler._sample, always passes complete: the default is never used',
    'sampling_job#108': "number's default is None already: passing None or leaving it out is the same call",
    'Handler._sample#26': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads content-type as '
                          'Content-Type',
    'Handler._sample#27': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads CONTENT-TYPE as '
                          'Content-Type',
    'Handler._sample#31': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads transfer-'
                          'encoding as Transfer-Encoding',
    'Handler._sample#32': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads TRANSFER-'
                          'ENCODING as Transfer-Encoding',
    'Handler._sample#36': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads cache-control as'
                          ' Cache-Control',
    'Handler._sample#37': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads CACHE-CONTROL as'
                          ' Cache-Control',
    'Handler._sample#41': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads it as X-Content-'
                          'Type-Options',
    'Handler._sample#42': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads it as X-Content-'
                          'Type-Options',
    'Handler._sample#46': "HTTP field names are case-insensitive (RFC 9110 5.1), and http.server's send_header "
                          'lower-cases the name it checks',
    'Handler._sample#47': "HTTP field names are case-insensitive (RFC 9110 5.1), and http.server's send_header "
                          'lower-cases the name it checks',
    'Handler._sample#80': 'traceback.print_exc(file=None) prints to sys.stderr, as file=sys.stderr does',
    'number#10': "check's third argument only names its ValueError's message, which number() drops for a message of "
                 'its own',
    'number#13': "check's third argument only names its ValueError's message, which number() drops for a message of "
                 'its own',
    'class_of#14': 'class_number reads its count only for a model without names, and class_of reaches it only when '
                   'names is a non-empty list',
    '_describe#2': 'np.load reads allow_pickle only for its truth: None refuses pickles as False does',
    '_describe#4': "np.load's default allow_pickle is False: the same call",
    '_describe#27': 'names is only used in the next line under config.classes, and class_names(None or a spec) '
                    'returns None or names without raising',
    'Handler._dispatch#23': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads content-type '
                            'as Content-Type',
    'Handler._dispatch#24': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads CONTENT-TYPE '
                            'as Content-Type',
    'Handler._dispatch#64': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads allow as Allow',
    'Handler._dispatch#65': 'HTTP field names are case-insensitive (RFC 9110 5.1): every client reads ALLOW as Allow',
    'Handler._dispatch#6': 'self.body is only read by parse_body, after _read_body has set it; the pages and the '
                           'refusals never read it',
    'parse_body#5': 'Python\'s codec lookup normalises names: "UTF-8" is the utf-8 codec',
    **{f"Gate.forward_at#{n}": "x.shape[:+1] or x.shape[+1] for x.shape[:-1] or x.shape[-1]: forward_at's x is "
                               "(n, 2 h), one position of the horizontal stack, where they are the same"
       for n in (3, 6)},
    "Gate.forward_at#11": "self.at[1] for self.at[0]: the two buffers have the same shape",
    "Gate.forward_at#21": "a third buffer, never read: memory only",
    "GatedLayer.start_at#43": "a third v_gate buffer, never read: memory only",
    "MaskedConv2d.forward_row#59": "y.reshape(n * width, -2): any negative size is the rest, in NumPy and CuPy",
    "ClassBias.backward#11": "dy.reshape(B, -2, C): any negative size is the rest, in NumPy and CuPy",
    "MaskedConv2d.start_at#96": "kernel > 2: conv_mask refuses even kernels, so > 1 and > 2 agree",
    **{f"Handler._check_origin#{n}": "a header name's case: http.server's headers are an email Message, whose get() "
                                     "matches names in any case" for n in (7, 8, 31, 32)},
    **{f"Handler._read_body#{n}": "a header name's case: http.server's headers are an email Message, whose get() "
                                  "matches names in any case" for n in (3, 4, 12, 13)},
    "Handler._dispatch#86": "traceback.print_exc(file=None) prints to sys.stderr, as file=sys.stderr does",
    **{f"PixelCNN.__init__#{n}": 'mask_type "B" left out of a 1x1 layer: "B" is MaskedConv2d\'s default'
       for n in (67, 83, 98)},
    **{f"PixelCNN.__init__#{n}": "ReLU(inplace=None or False): a new array instead of the same one, the same values"
       for n in (56, 57)},
    "PixelCNN.__init__#38": "input_grad=None for False: only its truth is read",
    **{f"ClassBias.__init__#{n}": 'onehot or b_at "" for None: condition() and start_at() set them before '
                                  "they are read (and a read before fails either way)" for n in (14, 15)},
    "GatedPixelCNN.__init__#46": "first=None for False: only its truth is read",
    "GatedPixelCNN.__init__#71": 'mask_type "B" left out of the 1x1 head: "B" is MaskedConv2d\'s default',
    **{f"GatedPixelCNN.__init__#{n}": "ReLU(inplace=None or False): a new array instead of the same one, the "
                                      "same values" for n in (56, 57)},
    "ShiftDown.backward#3": "array_module(None).zeros_like(dy): NumPy's zeros_like dispatches on dy "
                            "(__array_function__)",
    "ShiftDown.forward#3": "array_module(None).zeros_like(x): NumPy's zeros_like dispatches on x "
                           "(__array_function__)",
    "Gate.__init__#1": 't, s "" for None: a backward before any forward fails either way (the model\'s '
                       "convolutions, first in backward, say so)",
    "Gate.__init__#2": 'at "" for None: start_at sets it to None before forward_at reads it',
    **{f"chunk_rows#{n}": "3**62 or 2**63 for 2**62: every batch is one chunk either way" for n in (4, 5)},
    **{f"get_xp#{n}": "/ 2 or * 3 for * 2 in the first kernel: any element-wise op makes NVRTC compile one, "
                      "which is what the probe tries" for n in (32, 33)},
    "check#19": 'kind in "XXiuXX": a dtype kind is one letter, and "X" is none',
    "check#4": "ok = None for False: a value of neither kind leaves it so, and None is as false",
    "chunk_rows#10": 'getattr(xp, "whole_batch", None): None and False are both false',
    "chunk_rows#17": "2049 for 2048: a chunk's size is a tuning constant; the results are the same in any "
                     "chunking (tests/test_conv.py)",
    "Gate._halves#2": "array_module(None) is NumPy, whose tanh and multiply dispatch on a device array "
                      "(__array_ufunc__)",
    **{f"GatedLayer.__init__#{n}": "ClassBias(dtype=None) makes a float64 V, but pack_parameters copies every "
                                   "parameter into the model's one flat array of its dtype" for n in (92, 105)},
    **{f"GatedLayer.__init__#{n}": 'mask_type "B" left out of a 1x1 layer: "B" is MaskedConv2d\'s default'
       for n in (62, 80)},
    "GatedPixelCNN.__init__#93": 'mask_type "B" left out of the 1x1 output layer: "B" is MaskedConv2d\'s default',
    "GatedLayer.__init__#118": 'canvas_h, link_row, h_at "" for None: start_at sets them before they are read',
    "GatedPixelCNN.__init__#102": 'canvas_v, skip_at "" for None: start_at sets them before they are read',
    **{f"GatedLayer.children#{n}": "another name for a child without parameters (the shift, the gates, "
                                   "dropout): a child's name is read only to name its parameters, and dropout "
                                   "numbers its layers by their order" for n in (6, 7, 10, 11, 12, 13, 14, 15)},
    "numerical_gradient#8": "x.reshape(-2): any negative size is the rest, in NumPy and CuPy",
    **{f"relative_error#{n}": "astype(None) is astype(float64): the same array" for n in (2, 5)},
    "GatedPixelCNN.condition#7": "to_numpy(classes) for a list or tuple: array_module of one is NumPy, and "
                                 "to_numpy is then np.asarray",
}


def main(folder="mutants"):
    per_module = defaultdict(Counter)
    survivors = []
    slow_log = Path(folder) / "too-slow.txt"
    slow = set(slow_log.read_text().split()) if slow_log.exists() else set()
    modules_by_key = defaultdict(set)  # every mutant's key -> the modules that have mutants under it
    for meta in sorted(Path(folder).rglob("*.py.meta")):
        module = meta.relative_to(folder).as_posix().removesuffix(".meta")
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            key = mutant_key(name)
            modules_by_key[key].add(split_mutant(name)[0])
            if key in EQUIVALENT:
                per_module[module]["equivalent"] += 1
            elif code in KILLED:
                per_module[module]["killed"] += 1
                per_module[module]["by time"] += code in TIMED_OUT or name in slow
            elif code in SURVIVED:
                per_module[module]["survived"] += 1
                survivors.append((name, "no test reaches it" if code in (5, 33) else "survived"))
            else:
                per_module[module]["not run"] += 1
    if not per_module:
        sys.exit(f"no mutmut results under {folder}/: run scripts/mutation.sh first")
    total = Counter()
    print(f"{'module':28} {'mutants':>8} {'killed':>7} {'survived':>9} {'equiv.':>7} {'not run':>8} {'score':>7} {'by time':>8}")
    for module, counts in sorted(per_module.items()):
        total.update(counts)
        print(_row(module, counts))
    print(_row("all", total))
    for name, why in survivors:
        print(f"  {name}: {why}")
    problems = equivalent_problems(modules_by_key)
    for problem in problems:
        print(f"EQUIVALENT: {problem}")
    if problems:
        sys.exit(f"{len(problems)} EQUIVALENT entries match no mutant or mutants in two modules: fix them "
                 "in scripts/mutation_score.py (tests/test_mutation_keys.py finds most without a run)")


def equivalent_problems(modules_by_key):
    """What is wrong with EQUIVALENT against a run's mutants (key -> the modules with mutants under it):
    an entry that matches no mutant (orphaned) or mutants in more than one module (ambiguous)."""
    problems = []
    for key in sorted(EQUIVALENT):
        modules = modules_by_key.get(key, set())
        if not modules:
            problems.append(f"{key} matches no mutant of this run (a renamed, removed, changed or unmutated "
                            "function?)")
        elif len(modules) > 1:
            problems.append(f"{key} matches mutants in {len(modules)} modules ({', '.join(sorted(modules))}): "
                            "ambiguous")
    return problems


def _row(name, counts):
    scored = counts["killed"] + counts["survived"]
    mutants = scored + counts["equivalent"] + counts["not run"]
    score = f"{100 * counts['killed'] / scored:.1f}%" if scored else "-"
    return (f"{name:28} {mutants:8d} {counts['killed']:7d} {counts['survived']:9d} {counts['equivalent']:7d} "
            f"{counts['not run']:8d} {score:>7} {counts['by time']:8d}")


if __name__ == "__main__":
    main(*sys.argv[1:])
