using Farm.Contracts;
using Farm.Dockerfile.Graph;
using StepKind = Farm.Contracts.StepKind;

namespace Farm.Coordinator.Builds;

/// <summary>A planned layer step as the job a worker runs (the <see cref="BuildLayer"/> contract).</summary>
internal static class LayerSteps
{
    /// <summary>The job payload of <paramref name="step"/>, its <c>COPY --from</c> sources resolved to layers.</summary>
    /// <param name="step">The planned step.</param>
    /// <param name="stageLayers">The layers of a built stage, by index.</param>
    /// <param name="imageLayers">The layers of a pinned image, by reference.</param>
    /// <param name="contextDigest">The digest of the context tar: the build's (null) or a named directory context's.</param>
    public static LayerStep For(BuildStep step, Func<int, IReadOnlyList<LayerRef>> stageLayers, Func<string, IReadOnlyList<LayerRef>> imageLayers, Func<string?, string> contextDigest) => step.Payload switch
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
            },
        },
        WorkdirPayload w => new LayerStep { Kind = StepKind.Workdir, Display = step.Text, Workdir = w.Path },
        _ => throw new InvalidOperationException($"Step {step.Id} ({step.Instruction}) is a layer step without a layer payload."),
    };
}
