using Farm.Contracts;
using Farm.Dockerfile.Graph;
using Farm.Dockerfile.Instructions;
using StepKind = Farm.Contracts.StepKind;

namespace Farm.Coordinator.Builds;

/// <summary>A planned layer step as the job a worker runs (the <see cref="BuildLayer"/> contract).</summary>
internal static class LayerSteps
{
    /// <summary>The job payload of <paramref name="step"/>, its <c>COPY --from</c> and <c>RUN --mount</c> sources resolved to layers.</summary>
    /// <param name="step">The planned step.</param>
    /// <param name="stageLayers">The layers of an earlier stage, by index.</param>
    /// <param name="imageLayers">The layers of an image the build resolved, by reference as written.</param>
    /// <param name="contextDigest">The digest of a context tar: the build's (null) or a named directory context's.</param>
    /// <param name="mountStage">The index of the stage a <c>--mount from=</c> names (by name, as BuildKit looks it up), or null for an image.</param>
    /// <param name="tenant">The build's tenant, whose cache mounts the step uses.</param>
    /// <param name="gitCommits">The commits the build's ADD git sources were resolved to (<see cref="CopyStep.GitCommits"/>).</param>
    public static LayerStep For(
        BuildStep step,
        Func<int, IReadOnlyList<LayerRef>> stageLayers,
        Func<string, IReadOnlyList<LayerRef>> imageLayers,
        Func<string?, string> contextDigest,
        Func<string, int?>? mountStage = null,
        string? tenant = null,
        IReadOnlyDictionary<string, string>? gitCommits = null)
    {
        Contracts.CopySource From(string? name) => name is null
            ? new Contracts.CopySource { ContextDigest = contextDigest(null) }
            : mountStage?.Invoke(name) is { } index
                ? new Contracts.CopySource { Layers = stageLayers(index) }
                : new Contracts.CopySource { Layers = imageLayers(name) };

        return step.Payload switch
        {
        RunPayload r => new LayerStep
        {
            Kind = StepKind.Run,
            Display = step.Text,
            Run = new RunStep
            {
                Args = r.Argv,
                Env = [.. r.Env, .. r.ProxyEnv],
                User = r.User ?? string.Empty,
                WorkingDir = r.Workdir,
                Network = r.Network ?? "default",
                Files = [.. r.Files.Select(f => new Contracts.InlineFile("/dev/pipes/" + f.Name, f.Content, 0b111_101_101))],
                Mounts = [.. r.Mounts.Select(m => Mount(RunMount.Parse(m), r.Workdir, From, tenant))],
                ExtraHosts = r.ExtraHosts,
                ShmSizeBytes = r.ShmSizeBytes,
                Ulimits = r.Ulimits,
            },
        },
        CopyPayload c => new LayerStep
        {
            Kind = string.Equals(c.Instruction, "ADD", StringComparison.OrdinalIgnoreCase) ? StepKind.Add : StepKind.Copy,
            Display = step.Text,
            Copy = new CopyStep
            {
                Sources = c.Sources,
                Destination = c.Destination,
                WorkingDir = c.Workdir,
                Chown = c.Chown,
                Chmod = c.Chmod,
                Exclude = c.Exclude,
                Checksum = c.Checksum,
                From = c.From.Kind switch
                {
                    CopySourceKind.Stage => new Contracts.CopySource { Layers = stageLayers(c.From.Stage!.Value) },
                    CopySourceKind.Image => new Contracts.CopySource { Layers = imageLayers(c.From.Image!) },
                    _ => new Contracts.CopySource { ContextDigest = contextDigest(c.From.ContextName) },
                },
                Files = [.. c.InlineFiles.Select(f => new Contracts.InlineFile(f.Name, f.Content, 0b110_100_100))],
                Parents = c.Parents,
                KeepGitDir = c.KeepGitDir,
                GitCommits = gitCommits is null ? new Dictionary<string, string>() : c.Sources.Where(gitCommits.ContainsKey).ToDictionary(source => source, source => gitCommits[source], StringComparer.Ordinal),
            },
        },
        WorkdirPayload w => new LayerStep { Kind = StepKind.Workdir, Display = step.Text, Workdir = w.Path, WorkdirUser = w.User ?? string.Empty },
        _ => throw new InvalidOperationException($"Step {step.Id} ({step.Instruction}) is a layer step without a layer payload."),
        };
    }

    /// <summary>
    /// One mount in the job contract. A relative target is under the step's workdir, as in BuildKit; what a bind or a
    /// cache's seed shows is resolved to layers (or the context tar) here, so the worker needs no graph.
    /// </summary>
    internal static RunStepMount Mount(RunMount mount, string workdir, Func<string?, Contracts.CopySource> from, string? tenant)
    {
        var target = mount.Target is null ? null : "/" + string.Join('/', (mount.Target.StartsWith('/') ? mount.Target : workdir + "/" + mount.Target).Split('/', StringSplitOptions.RemoveEmptyEntries));
        var result = new RunStepMount
        {
            Type = mount.Type.ToString().ToLowerInvariant(),
            Target = target,
            ReadOnly = mount.ReadOnly,
            Source = mount.Source,
            Mode = mount.Mode,
            Uid = mount.Uid ?? 0,
            Gid = mount.Gid ?? 0,
        };
        return mount.Type switch
        {
            RunMountType.Bind => result with { From = from(mount.From) },
            RunMountType.Cache => result with
            {
                Id = mount.EffectiveId,
                Tenant = tenant,
                Sharing = mount.Sharing.ToString().ToLowerInvariant(),
                From = mount.From is null ? null : from(mount.From),
            },
            RunMountType.Tmpfs => result with { SizeBytes = mount.SizeBytes },
            RunMountType.Secret => result with { Id = mount.EffectiveId, Env = mount.Env, Required = mount.Required },
            RunMountType.Ssh => result with { Id = mount.EffectiveId, Required = mount.Required },
            _ => throw new InvalidOperationException($"Unknown mount type {mount.Type}."),
        };
    }
}
