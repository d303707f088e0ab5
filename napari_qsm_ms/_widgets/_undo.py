"""One undo step for a dock operation that edits several layers (Build references, Remove vessels...).

napari keeps one undo history per Labels layer and Ctrl-Z undoes the ACTIVE layer's last step. After
an operation that wrote to other layers (references into refwm and refgm while the user is on
'lesions'), Ctrl-Z would undo the user's last brush stroke instead. :class:`OperationUndo` binds
Ctrl-Z (and Cmd-Z) on the layers the user may be on, so that the next Ctrl-Z undoes the whole
operation on every layer it edited, once; any later edit by the user (a stroke) or a new
operation makes napari's own Ctrl-Z the one that counts again.
"""

from __future__ import annotations

import weakref

from napari.utils.notifications import show_info

from ._layers import _programmatic

CTRL_Z = "Control-Z"


class OperationUndo:
    """The last multi-layer operation of a dock, undoable in one Ctrl-Z from where the user is."""

    def __init__(self) -> None:
        self.name: str | None = None
        self._edited: list[weakref.ref] = []
        self._bound: list[weakref.ref] = []
        self._on_undone = None

    @property
    def pending(self) -> bool:
        return self.name is not None

    def record(self, name: str, edited: list, home: list, on_undone=None) -> None:
        """``edited`` layers each got ONE history step from the operation ``name``; Ctrl-Z on any
        of ``home`` + ``edited`` undoes them all. ``on_undone()`` runs afterwards (table refresh)."""
        self.clear()
        self.name = name
        self._edited = [weakref.ref(layer) for layer in edited]
        self._on_undone = on_undone
        for layer in {id(x): x for x in [*home, *edited] if x is not None}.values():
            layer.bind_key(CTRL_Z, self._undo_key, overwrite=True)
            layer.events.paint.connect(self._on_user_edit)
            self._bound.append(weakref.ref(layer))

    def _undo_key(self, _layer=None) -> None:
        self.undo()

    def undo(self) -> bool:
        """Undo the recorded operation on every layer it edited; False if nothing is pending."""
        if not self.pending:
            return False
        name, edited, on_undone = self.name, [r() for r in self._edited], self._on_undone
        self.clear()
        _programmatic[0] += 1  # the undo itself is not a user's stroke on a reference layer
        try:
            for layer in edited:
                if layer is not None:
                    layer.undo()
        finally:
            _programmatic[0] -= 1
        show_info(f"undone: {name}")
        if on_undone is not None:
            on_undone()
        return True

    def _on_user_edit(self, event=None) -> None:
        if not _programmatic[0]:
            self.clear()  # the user's own edit is now the latest step: napari's Ctrl-Z again

    def clear(self) -> None:
        for ref in self._bound:
            layer = ref()
            if layer is None:
                continue
            layer.bind_key(CTRL_Z, None)
            try:
                layer.events.paint.disconnect(self._on_user_edit)
            except (TypeError, ValueError):  # pragma: no cover
                pass
        self._bound, self._edited, self.name, self._on_undone = [], [], None, None
