"""Repository rule exposing ../shared/models (beside the project) to tests.

Unlike new_local_repository, it tolerates the folder being absent: the
repository is then empty and tests that need a model skip with a message.
"""

def _shared_models_impl(ctx):
    root = ctx.path(Label("@//:WORKSPACE")).dirname
    models = ctx.path(str(root) + "/" + ctx.attr.path)
    if models.exists:
        for entry in models.readdir():
            ctx.symlink(entry, entry.basename)
    ctx.file("BUILD", ctx.read(ctx.attr.build_file))
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)

shared_models_repository = repository_rule(
    implementation = _shared_models_impl,
    attrs = {
        "path": attr.string(mandatory = True, doc = "Folder relative to the workspace root."),
        "build_file": attr.label(mandatory = True, allow_single_file = True),
    },
    local = True,
)
