"""`gptkit train` (a run directory from prepared data) and `gptkit forgetting` (the sequential-vs-mixed experiment).

Wiring only: settings are resolved by `gptkit.train.settings`, the loop is `gptkit.train.loop`.
"""

from gptkit.cli.common import DEVICE, MEMORY_CHECK_HELP
from gptkit.errors import GptkitError


def _train_config(args):
    from gptkit.train.settings import run_settings

    overrides = list(args.set)
    if args.device:
        overrides.append(f"train.device={args.device}")
    return run_settings(
        args.out,
        preset=args.preset,
        toml_path=args.config,
        overrides=overrides,
        data=args.data,
        resume=args.resume,
        init_from=args.init_from,
    )


def cmd_train(args) -> None:
    if args.help_config:
        from gptkit.config import describe_fields

        print(describe_fields())
        return
    if not args.out:
        raise GptkitError("train: --out RUN_DIR is required (where the run's weights, config and logs go)")
    config = _train_config(args)
    from gptkit.objectives import objective_for
    from gptkit.train.loop import train

    result = train(
        config,
        args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        init_from=args.init_from,
        check_memory=not args.skip_memory_check,
    )
    if result.rank != 0:  # under torchrun, rank 0 speaks for all
        return
    use = objective_for(config).next_step(result.run_dir)
    print(f"done: {result.step} steps, final val loss {result.val_loss:.4f} (best {result.best_val_loss:.4f}); {use}")


def cmd_forgetting(args) -> None:
    from gptkit.experiments import forgetting

    table = forgetting(args.a, args.b, args.steps, args.out, preset=args.preset, overrides=args.set)
    print(f"{'run':<12} {'val loss A':>11} {'val loss B':>11}")
    for run, losses in table["final"].items():
        print(f"{run:<12} {losses['A']:>11.4f} {losses['B']:>11.4f}")
    print(f"wrote {args.out}/forgetting.png and forgetting.json")


def _add_settings_options(p) -> None:
    p.add_argument(
        "--preset", help="named settings (see `gptkit info`): cpu-baby (the defaults), llama-tiny, gpt2, ..."
    )
    p.add_argument(
        "--set",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override settings, e.g. --set model.n_layer=6 train.lr=3e-4",
    )


def add_train_commands(sub) -> None:
    p = sub.add_parser("train", parents=[DEVICE], help="train a GPT on prepared data; writes a run directory")
    p.add_argument("--data", help="prepared data folder (from `gptkit prepare`)")
    p.add_argument("--out", help="run directory to write")
    p.add_argument("--config", help="TOML file with [model], [train] and [[data]] settings")
    _add_settings_options(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    p.add_argument("--init-from", metavar="RUN", help="start from another run's weights (fine-tuning)")
    p.add_argument("--help-config", action="store_true", help="list every setting with its default and exit")
    p.add_argument("--skip-memory-check", action="store_true", help=MEMORY_CHECK_HELP)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("forgetting", help="experiment: train A then B vs A+B mixed; plot val loss on both")
    p.add_argument("--a", required=True, help="prepared dataset A (first in the sequential run)")
    p.add_argument("--b", required=True, help="prepared dataset B (same tokenizer as A)")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps per run (sequential: half on each)")
    p.add_argument("--out", required=True, help="folder for the two runs, forgetting.png and forgetting.json")
    _add_settings_options(p)
    p.set_defaults(func=cmd_forgetting, preset="cpu-baby")
