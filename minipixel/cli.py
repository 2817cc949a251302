"""The ``minipixel`` command: train, sample, eval, complete, show, download, gradcheck, bench, learn, serve.

The commands that draw pictures (sample, complete, show) are in ``cli_pictures``;
the options they share, with their ranges, in ``options``.
"""
import argparse
import json
import os
import sys
from dataclasses import fields, replace

from .backend import DeviceError
from .checkpoint import CheckpointError
from .cli_pictures import complete_parser, sample_parser, show_parser
from .model import ARCHS
from .options import Parser, UsageError, add_model_arguments, add_threads_argument, document, option


def _train_parser(sub):
    from .settings import TrainSettings

    d = TrainSettings()
    p = sub.add_parser("train", help="train a PixelCNN (no arguments: binarized MNIST-5k, about 6-7 minutes on a 2-core CPU)")
    p.add_argument("--data", help=f"training data: a file or NAME:SPLIT (default {d.data})")
    p.add_argument("--valid", help="validation data (default: the dataset's valid split, else a 10%% hold-out)")
    p.add_argument("--data-dir", help="folder of named datasets (default: $MINIPIXEL_DATA or data/)")
    p.add_argument("--size", type=option("size"), help="image folders: centre-crop and resize every image to SIZE x SIZE (default: keep their size)")
    p.add_argument("--levels", type=option("levels"), help=f"values per sub-pixel, 2..256 (default {d.levels})")
    p.add_argument("--binarize", choices=["threshold", "sample"], help=f"how grey data becomes 2 levels (default {d.binarize})")
    p.add_argument("--arch", choices=ARCHS,
                   help=f"pixelcnn: masked convolutions (the first paper); gated: two stacks and gated units, "
                        f"no blind spot (default {d.arch})")
    p.add_argument("--conditional", action="store_true", default=None,
                   help="gated only: condition on the data's class labels (sample --class K then draws class K)")
    p.add_argument("--filters", type=option("filters"), help=f"width h of the residual stream, or of both gated stacks "
                                               f"(default {d.filters})")
    p.add_argument("--blocks", type=option("blocks"), help=f"residual blocks, or gated layers after the first (default {d.blocks})")
    p.add_argument("--block", choices=["half", "keras"], help=f"residual block widths (default {d.block})")
    p.add_argument("--batch", type=option("batch"), help=f"batch size (default {d.batch})")
    p.add_argument("--epochs", type=option("epochs"), help=f"epochs (default {d.epochs})")
    p.add_argument("--steps", type=option("steps"), help="total optimizer steps, overriding --epochs (default: --epochs)")
    p.add_argument("--minutes", type=option("minutes"), help="also stop after this many minutes of training (across resumes), "
                                                 "with an evaluation and a checkpoint (default: no limit)")
    p.add_argument("--lr", type=option("lr"), help=f"Adam learning rate (default {d.lr})")
    p.add_argument("--lr-decay", type=option("lr_decay"), help=f"lr multiplier per step (default {d.lr_decay})")
    p.add_argument("--ema", type=option("ema"), help="Polyak averaging: evaluate, keep best.npz and draw samples.png "
                                                   "with a moving average of the weights of this decay a step, e.g. "
                                                   "0.9995; can be switched on at a --resume (default 0: off)")
    p.add_argument("--dropout", type=option("dropout"), help="gated only: while training, zero each gated unit of the "
                                                           "horizontal stacks with this probability, e.g. 0.1; "
                                                           "can be changed at a --resume (default 0: off)")
    p.add_argument("--seed", type=option("seed"), help=f"seed of weights, data order, hold-out (default {d.seed})")
    p.add_argument("--device", choices=["cpu", "gpu"], help="cpu (NumPy) or gpu (CuPy) (default cpu)")
    p.add_argument("--samples", type=option("samples"), help=f"images in samples.png at the end (default {d.samples})")
    p.add_argument("--temperature", type=option("temperature"), help=f"sampling temperature for samples.png (default {d.temperature})")
    p.add_argument("--eval-every", type=option("eval_every"), help="evaluate, checkpoint and keep best.npz every N "
                                                                  "steps (default: at the end of every epoch)")
    p.add_argument("--save-every", type=option("save_every"), help="also checkpoint every N steps (default: only "
                                                                  "at evaluations)")
    p.add_argument("--out", help="run folder (default runs/<data>-<date>-<time>, e.g. runs/mnist5k-train-20261125-143000; "
                                 "with --resume RUN: the run goes on in this folder, RUN stays as it was)")
    p.add_argument("--resume", help="continue the run in this folder (or checkpoint file) where it stopped; "
                                    "only --epochs, --steps, --minutes, --device, --lr, --lr-decay, --ema, --dropout, --eval-every "
                                    "and --save-every may change it (default: a new run)")
    p.add_argument("--overwrite", action="store_true",
                   help="let a new run (or --resume X --out Y) replace the run in its --out folder; the old files "
                        "wait in replaced-run/ there until the new run's first checkpoint (default: refuse)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_threads_argument(p)
    p.set_defaults(handler=cmd_train)


def cmd_train(args):
    from .settings import RESUME_FIELDS, TrainSettings, run_settings
    from .train import train

    given = {f.name: getattr(args, f.name) for f in fields(TrainSettings)
             if getattr(args, f.name, None) is not None}
    if args.resume:
        extra = sorted(set(given) - set(RESUME_FIELDS))
        if extra:
            allowed = ", ".join("--" + name.replace("_", "-") for name in RESUME_FIELDS)
            raise ValueError(
                f"--resume continues a run with the settings saved in its checkpoint; only {allowed} and --out may "
                f"be given with it (got {', '.join('--' + e.replace('_', '-') for e in extra)})"
            )
        # The run's own settings, changed only where an option says so: --resume
        # alone finishes the run as it was started.
        saved = run_settings(args.resume)
        if "epochs" in given and "steps" not in given:
            given["steps"] = None  # --epochs replaces a saved --steps
        settings = replace(saved, **given)
    else:
        settings = TrainSettings(**given)
    train(settings, out=args.out, resume=args.resume, progress=not args.quiet, overwrite=args.overwrite)
    return 0


def _eval_parser(sub):
    p = sub.add_parser("eval", help="negative log-likelihood of a dataset under a checkpoint")
    add_model_arguments(p)
    p.add_argument("--data", required=True, help="a file or NAME:SPLIT")
    p.add_argument("--data-dir", help="folder of named datasets (default: $MINIPIXEL_DATA or data/)")
    p.add_argument("--binarize", choices=["threshold", "sample"], help="default: as in training")
    p.add_argument("--size", type=option("size"), help="image folders: centre-crop and resize to SIZE x SIZE (default: as in training)")
    p.add_argument("--batch", type=option("batch"), default=64, help="images per forward pass (default 64)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="cpu or gpu (default cpu)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_threads_argument(p)
    p.set_defaults(handler=cmd_eval)


def cmd_eval(args):
    from dataclasses import replace

    from .checkpoint import load_model
    from .evaluate import evaluate
    from .rundata import run_labels
    from .settings import run_settings

    model, _, state = load_model(args.checkpoint, device=args.device)
    trained = run_settings(args.checkpoint, state, model)
    settings = replace(trained, binarize=args.binarize or trained.binarize, size=args.size or trained.size,
                       data_dir=args.data_dir or trained.data_dir)
    labels, classes = run_labels(args.data, settings, model, args.checkpoint, progress=not args.json)
    result = evaluate(model, labels, args.batch, progress=not args.json, classes=classes)
    result.update(data=args.data, checkpoint=str(args.checkpoint), levels=model.config.levels)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.data}: {result['nll_nats']:.3f} nats/image, {result['bits_per_dim']:.4f} bits/dim "
              f"over {result['images']} images")
    return 0


def _gradcheck_parser(sub):
    p = sub.add_parser("gradcheck", help="check every backward pass against central differences (float64)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="where the layers run (default cpu)")
    p.set_defaults(handler=cmd_gradcheck)


def cmd_gradcheck(args):
    from .gradcheck import format_table, run_all

    rows = run_all(device=args.device)
    print(format_table(rows))
    return 0 if all(ok for _, _, ok in rows) else 1


def _bench_parser(sub):
    from .bench import add_arguments

    p = sub.add_parser("bench", help="benchmark the reference model (prints one JSON object)")
    add_arguments(p)
    p.set_defaults(handler=cmd_bench)


def cmd_bench(args):
    from .bench import run_from_args

    return run_from_args(args)


def _download_parser(sub):
    from .datasets import DOWNLOADABLE

    p = sub.add_parser("download", help="download a dataset into the data folder, checking its checksums")
    p.add_argument("name", choices=list(DOWNLOADABLE))
    p.add_argument("--data-dir", help="where to put it (default: $MINIPIXEL_DATA or data/)")
    p.add_argument("--mirror", help="fetch the files from this base URL instead (or set $MINIPIXEL_MIRROR; default: the published URLs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_download)


def cmd_download(args):
    from .datasets import DownloadError, download

    try:
        paths = download(args.name, data_dir=args.data_dir, base_url=args.mirror, progress=not args.quiet)
    except DownloadError as err:
        print(f"minipixel download: {err}", file=sys.stderr)
        return 1
    print(f"{args.name}: {len(paths)} files in {paths[0].parent}" if paths else f"{args.name}: nothing to do")
    return 0


def _pretrained_parser(sub):
    p = sub.add_parser("pretrained", help="list the pretrained models installed with minipixel (use them with "
                                          "--pretrained NAME)")
    p.set_defaults(handler=cmd_pretrained)


def cmd_pretrained(args):
    from . import pretrained

    print("\n".join(pretrained.describe()))
    return 0


def _learn_parser(sub):
    p = sub.add_parser("learn", help="exercises: write the internals yourself, graded by the library "
                                     "(no arguments: the list, with your progress)")
    p.add_argument("--dir", dest="list_dir", help="your exercises folder, for the list (default ./minipixel-exercises/)")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    helps = {"list": "the exercises in order, with their status in your folder",
             "start": "write an exercise's skeleton into your folder (never overwrites)",
             "check": "grade your file: what is right, what is wrong and where (exit 0: it passes)",
             "hint": "the next hint", "solution": "where the library's own implementation is"}
    for action, help in helps.items():
        a = actions.add_parser(action, help=help)
        if action != "list":
            a.add_argument("name", metavar="NAME", help="the exercise (minipixel learn lists them)")
        if action != "solution":
            a.add_argument("--dir", help="your exercises folder (default ./minipixel-exercises/)")
    p.set_defaults(handler=cmd_learn)


def cmd_learn(args):
    from .learn import runner

    action, folder = args.action or "list", getattr(args, "dir", None) or args.list_dir
    if action == "list":
        print(runner.list_exercises(folder))
        return 0
    if action in ("start", "check"):
        text, code = getattr(runner, action)(args.name, folder)
        print(text, file=sys.stderr if action == "start" and code else sys.stdout)
        return code
    print(runner.hint(args.name, folder) if action == "hint" else runner.solution(args.name))
    return 0


def _serve_parser(sub):
    p = sub.add_parser("serve", help="a local web page: watch the sampler, complete drawings, explore a model")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                                                       "only; any other is reachable from the network)")
    p.add_argument("--port", type=option("port"), default=8000, help="port (default 8000; 0: any free one)")
    p.add_argument("--models", metavar="DIR", action="append",
                   help="also offer the run folders under DIR, beside the installed models; repeatable "
                        "(default: the installed models only)")
    p.add_argument("--open", action="store_true", help="also open the page in the default browser (default: off)")
    add_threads_argument(p)
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args):
    from .serve import LOOPBACK, WEB, Server
    from .serve_api import Catalogue

    catalogue = Catalogue(args.models or ())
    server = Server(args.host, args.port, catalogue)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{server.server_port}/"
    if args.host not in LOOPBACK:
        print(f"minipixel serve: warning: --host {args.host}: the server is reachable from the network, and "
              "anyone who reaches it can use it", file=sys.stderr)
    if not server.pages:
        print(f"minipixel serve: warning: {WEB} holds no page; the endpoints answer all the same", file=sys.stderr)
    count = len(catalogue.models)
    print(f"minipixel serve: {url} ({count} model{'s' * (count != 1)}); Ctrl-C stops it", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def build_parser():
    from . import __version__

    parser = Parser(prog="minipixel", description="A from-scratch PixelCNN on NumPy / CuPy.")
    parser.add_argument("--version", action="version", version=f"minipixel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_train_parser, sample_parser, _eval_parser, complete_parser, show_parser, _download_parser,
                _pretrained_parser, _gradcheck_parser, _bench_parser, _learn_parser, _serve_parser):
        add(sub)
    return document(parser)


def commands(parser):
    """``minipixel`` alone: every command with its line."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    lines = [f"  {choice.dest:<11} {choice.help}" for choice in action._choices_actions]
    return "usage: minipixel COMMAND [options]   (minipixel COMMAND --help: its options)\n\ncommands:\n" + \
        "\n".join(lines) + "\n"


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        print(commands(parser), end="")
        return 0
    try:
        if getattr(args, "threads", None) is not None:
            from . import threads

            threads.set_threads(args.threads)
        if getattr(args, "pretrained", None) is not None:  # from here on, the installed model's checkpoint
            from . import pretrained

            args.checkpoint = pretrained.path(args.pretrained)
        code = args.handler(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except UsageError as err:  # a value outside the range the model allows: as the parser would
        print(f"minipixel {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `minipixel pretrained | head`: the reader went away, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, DeviceError, CheckpointError, RuntimeError, MemoryError) as err:
        print(f"minipixel {args.command}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # ours (a missing file, a run in the way) or the system's (a full disk): one line
        print(f"minipixel {args.command}: error: {err.filename}: {err.strerror}" if err.filename and err.strerror
              else f"minipixel {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:  # 128 + the signal, as a shell reports it (130: Ctrl-C)
        return 128 + getattr(err, "signum", 2)


if __name__ == "__main__":
    sys.exit(main())
