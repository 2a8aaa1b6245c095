"""Every `medtk` command by name; each lives in its own light module (`cmd_<name>.py`)."""

from medtk.cli.cmd_bench import bench
from medtk.cli.cmd_compress import compress
from medtk.cli.cmd_demo import demo
from medtk.cli.cmd_devices import devices
from medtk.cli.cmd_eval import eval_run
from medtk.cli.cmd_explain import explain
from medtk.cli.cmd_predict import predict
from medtk.cli.cmd_prepare import prepare
from medtk.cli.cmd_report import report
from medtk.cli.cmd_serve import serve
from medtk.cli.cmd_sign import sign
from medtk.cli.cmd_train import train

COMMANDS = {
    "prepare": prepare,
    "train": train,
    "eval": eval_run,
    "bench": bench,
    "devices": devices,
    "compress": compress,
    "predict": predict,
    "explain": explain,
    "report": report,
    "serve": serve,
    "sign": sign,
    "demo": demo,
}
