"""`cnnc lsp` driven by a real LSP client over stdio (pygls's LanguageClient, which starts
`python -m cnnc lsp` as an editor would): initialize, didOpen, didChange, hover, and the
publishDiagnostics notifications, with the exact diagnostics and hover texts asserted.
Positions on the wire are 0-based and in UTF-16 code units (the protocol's default)."""

from __future__ import annotations

import asyncio
import sys

import pytest

lsp_types = pytest.importorskip("lsprotocol.types")
client_module = pytest.importorskip("pygls.lsp.client")
T = lsp_types

KERNEL = ("Conv2D kernel_size=7x7 does not fit its input: needs at least 7x7, got 3x3\n"
          "note: with padding='valid' the output height is floor((3 - 7) / 1) + 1 = -3, which must be "
          "at least 1\n"
          "help: use padding='same', a smaller kernel_size, or fewer pooling layers before it")

CNN = "model tiny\ninput (5, 5, 3)\nConv2D(4, 3)\nConv2D(64, name='c😀', kernel_size=(7, 7))\n"
SCRIPT = """\
import keras
from keras import layers

model = keras.Sequential([
    keras.Input(shape=(28, 28, 1)),
    layers.Conv2D(32, (3, 3), activation="relu"),
    layers.MaxPooling2D((2, 2)),
    layers.Flatten(),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="categorical_crossentropy")
"""


class Session:
    """A client connected to `cnnc lsp`, collecting the diagnostics it publishes."""

    def __init__(self):
        self.client = client_module.LanguageClient("cnnc-test", "1")
        self.published: asyncio.Queue = asyncio.Queue()

        @self.client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _published(ls, params):
            self.published.put_nowait(params)

    async def start(self) -> T.InitializeResult:
        await self.client.start_io(sys.executable, "-m", "cnnc", "lsp")
        result = await self.client.initialize_async(T.InitializeParams(
            capabilities=T.ClientCapabilities(), process_id=None, root_uri=None))
        self.client.initialized(T.InitializedParams())
        return result

    async def diagnostics(self, timeout: float = 30) -> T.PublishDiagnosticsParams:
        return await asyncio.wait_for(self.published.get(), timeout)

    def open(self, uri: str, text: str, language: str) -> None:
        self.client.text_document_did_open(T.DidOpenTextDocumentParams(
            T.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))

    def change(self, uri: str, version: int, start: tuple, end: tuple, text: str) -> None:
        self.client.text_document_did_change(T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(version=version, uri=uri),
            content_changes=[T.TextDocumentContentChangePartial(
                range=T.Range(T.Position(*start), T.Position(*end)), text=text)]))

    async def hover(self, uri: str, line: int, character: int) -> T.Hover | None:
        return await self.client.text_document_hover_async(T.HoverParams(
            T.TextDocumentIdentifier(uri=uri), T.Position(line, character)))

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


def _run(scenario) -> None:
    async def main():
        session = Session()
        try:
            await scenario(session, await session.start())
        finally:
            await session.stop()
    asyncio.run(main())


def _range(a: tuple, b: tuple) -> T.Range:
    return T.Range(T.Position(*a), T.Position(*b))


def test_diagnostics_as_you_type_in_a_cnn_file(tmp_path):
    uri = (tmp_path / "tiny.cnn").as_uri()

    async def scenario(s: Session, init: T.InitializeResult):
        caps = init.capabilities
        assert caps.hover_provider is True
        assert caps.text_document_sync.change == T.TextDocumentSyncKind.Incremental
        s.open(uri, CNN, "cnn")
        published = await s.diagnostics()
        assert published.uri == uri and published.version == 1
        # line 4, code points 22 to 40 (0-based); the emoji is 2 UTF-16 units: 23 to 41 on the wire
        assert list(published.diagnostics) == [T.Diagnostic(
            range=_range((3, 23), (3, 41)), message=KERNEL, severity=T.DiagnosticSeverity.Error,
            source="cnnc")]

        # two edits in quick succession: only the last version is checked and published
        s.change(uri, 2, (3, 36), (3, 37), "9")           # kernel_size=(9, 7): still too big
        s.change(uri, 3, (3, 36), (3, 37), "3")           # kernel_size=(3, 7)
        published = await s.diagnostics()
        assert published.version == 3
        assert [d.message.split("\n")[0] for d in published.diagnostics] == [
            "Conv2D kernel_size=3x7 does not fit its input: needs at least 3x7, got 3x3"]
        s.change(uri, 4, (3, 39), (3, 40), "3")           # kernel_size=(3, 3)
        published = await s.diagnostics()
        assert (published.version, list(published.diagnostics)) == (4, [])
        with pytest.raises(asyncio.TimeoutError):         # nothing else was published
            await s.diagnostics(timeout=1.0)

        # hover: a layer call, then the model's name
        hover = await s.hover(uri, 2, 2)
        assert hover.contents.value == ("**conv2d** (Conv2D) in model `tiny`\n\n"
                                        "- input: `(None, 5, 5, 3)`\n- output: `(None, 3, 3, 4)`\n"
                                        "- params: 112\n- MACs: 972 per sample")
        assert hover.range == _range((2, 0), (2, 12))
        hover = await s.hover(uri, 0, 8)
        assert hover.contents.value == ("**tiny**: model `tiny`, 2 layers\n\n- input: `(None, 5, 5, 3)`\n"
                                        "- output: `(None, 1, 1, 64)`\n"
                                        "- params: 2,480 (trainable 2,480, non-trainable 0)\n"
                                        "- MACs: 3,276 per sample")
        assert await s.hover(uri, 1, 1) is None          # `input`: neither a layer nor a model
    _run(scenario)


def test_hover_and_diagnostics_in_a_keras_script(tmp_path):
    uri = (tmp_path / "train.py").as_uri()
    plain = (tmp_path / "util.py").as_uri()

    async def scenario(s: Session, init):
        s.open(plain, "def helper():\n    return 1\n", "python")
        published = await s.diagnostics()
        assert (published.uri, list(published.diagnostics)) == (plain, [])      # no Keras: nothing to say
        s.open(uri, SCRIPT, "python")
        published = await s.diagnostics()
        assert (published.uri, list(published.diagnostics)) == (uri, [])
        # Conv2D(32, (3, 3)) on 28x28x1: 3*3*1*32 + 32 = 320 params, 26*26*32*9 = 194,688 MACs
        hover = await s.hover(uri, 5, 12)
        assert hover.contents.value == ("**conv2d** (Conv2D) in model `model`\n\n"
                                        "- input: `(None, 28, 28, 1)`\n- output: `(None, 26, 26, 32)`\n"
                                        "- params: 320\n- MACs: 194,688 per sample")
        assert hover.range == _range((5, 4), (5, 48))
        # Dense(10) on 13*13*32 = 5,408 values: 54,090 params
        hover = await s.hover(uri, 8, 10)
        assert "- output: `(None, 10)`\n- params: 54,090\n- MACs: 54,080 per sample" in hover.contents.value
        hover = await s.hover(uri, 10, 2)                  # `model` in model.compile(...)
        assert hover.contents.value == ("**model**: model `sequential`, 4 layers\n\n"
                                        "- input: `(None, 28, 28, 1)`\n- output: `(None, 10)`\n"
                                        "- params: 54,410 (trainable 54,410, non-trainable 0)\n"
                                        "- MACs: 248,768 per sample")
        assert hover.range == _range((10, 0), (10, 5))

        # type a mistake: a kernel larger than the image
        s.change(uri, 2, (5, 22), (5, 28), "(30, 30)")   # layers.Conv2D(32, (30, 30), ...)
        published = await s.diagnostics()
        assert published.version == 2
        assert list(published.diagnostics) == [T.Diagnostic(
            range=_range((5, 22), (5, 30)),
            message=("Conv2D kernel_size=30x30 does not fit its input: needs at least 30x30, got 28x28\n"
                     "note: with padding='valid' the output height is floor((28 - 30) / 1) + 1 = -1, "
                     "which must be at least 1\n"
                     "help: use padding='same', a smaller kernel_size, or fewer pooling layers before it"),
            severity=T.DiagnosticSeverity.Error, source="cnnc")]
    _run(scenario)
