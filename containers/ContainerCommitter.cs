using Farm.Containers.Runc;
using Farm.Dockerfile.Changes;
using Farm.Oci;
using Farm.Oci.Images;
using Farm.Oci.Layers;

namespace Farm.Containers;

/// <summary>
/// <c>farm commit</c>: a container's upperdir as a new layer on top of its image, the config with the container's
/// settings and the <c>-c</c> changes, and a history entry with author and message.
/// See <see href="https://docs.docker.com/reference/cli/docker/container/commit/">docker commit</see>.
/// </summary>
internal sealed class ContainerCommitter(ContainerStore store, RuncExecutor executor)
{
    /// <summary>Commits <paramref name="container"/> (its state as refreshed) into <paramref name="images"/>.</summary>
    /// <exception cref="InvalidConfigChangeException">A change is malformed or not one a commit can carry.</exception>
    public async Task<LocalImage> CommitAsync(ContainerState container, ContainerCommitOptions options, LocalImageStore images, TextWriter warnings, CancellationToken cancellationToken)
    {
        var paths = store.PathsOf(container.Id);
        var config = ImageConfig.Parse(await File.ReadAllBytesAsync(paths.ImageConfig, cancellationToken).ConfigureAwait(false));
        var baseManifest = OciJson.ParseManifest(await File.ReadAllBytesAsync(paths.ImageManifest, cancellationToken).ConfigureAwait(false));
        ApplyContainerSettings(config, container);
        ConfigChanges.Apply(config, options.Changes);

        var paused = false;
        if (options.Pause && container.Status == ContainerStatus.Running)
        {
            var refused = await executor.PauseAsync(container.Id).ConfigureAwait(false);
            paused = refused is null;
            if (!paused)
            {
                await warnings.WriteLineAsync($"farm: warning: {container.Name} could not be paused ({refused}); committing while it runs, so files it writes meanwhile may be caught half-written.").ConfigureAwait(false);
            }
        }

        LayerResult layer;
        var temp = Path.Combine(images.Root, "blobs", "sha256", $".tmp-commit-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.GetDirectoryName(temp)!);
        try
        {
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                try
                {
                    layer = await LayerWriter.WriteUpperDirAsync(paths.Upper, file, new LayerWriteOptions(), cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    if (paused)
                    {
                        await executor.ResumeAsync(container.Id).ConfigureAwait(false);
                    }
                }

                file.Position = 0;
                await images.Layout.PutAsync(layer.Descriptor, file, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            File.Delete(temp);
        }

        var now = DateTimeOffset.UtcNow;
        config.Created = now;
        if (options.Author is not null)
        {
            config.Author = options.Author;
        }

        config.AddLayer(layer.DiffId, new HistoryEntry
        {
            Created = now,
            CreatedBy = string.Join(' ', container.Args),
            Author = options.Author,
            Comment = options.Message,
        });
        return await images.AddAsync(config, [.. baseManifest.Layers, layer.Descriptor], options.Name, cancellationToken).ConfigureAwait(false);
    }

    private static void ApplyContainerSettings(ImageConfig config, ContainerState container)
    {
        // docker commit keeps how the container was run: its command, -e, -w and -u become the image's.
        if (container.EntrypointOverride is { } entrypoint)
        {
            config.Entrypoint = entrypoint.Count > 0 ? entrypoint : null;
            config.Cmd = container.Command;
        }
        else if (container.Command is { } command)
        {
            config.Cmd = command;
        }

        if (container.EnvOverrides.Count > 0)
        {
            config.Env = container.Env;
        }

        if (container.WorkingDirOverride is { } cwd)
        {
            config.WorkingDir = cwd;
        }

        if (container.UserOverride is { } user)
        {
            config.User = user;
        }
    }
}
