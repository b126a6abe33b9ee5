using LayerRef = Farm.Contracts.LayerRef;
using Farm.Dockerfile.Graph;
using Farm.Oci;

namespace Farm.Coordinator.Assembly;

/// <summary>The manifest vocabulary an image is written in.</summary>
public enum ImageFormat
{
    /// <summary>OCI image manifest and config media types (the default, as BuildKit's).</summary>
    Oci,

    /// <summary>Docker image manifest v2 schema 2, for registries and tools that want it.</summary>
    Docker,
}

/// <summary>What a stage is built on: a pulled image's config and layers, or nothing.</summary>
/// <remarks>https://github.com/opencontainers/image-spec/blob/main/config.md</remarks>
public sealed record BaseImage
{
    /// <summary>The base image config; the assembler clones it, so it is never changed.</summary>
    public required ImageConfig Config { get; init; }

    /// <summary>The base layers, bottom first, as the base manifest lists them.</summary>
    public required IReadOnlyList<Descriptor> Layers { get; init; }

    /// <summary><c>FROM scratch</c>: an empty linux/amd64 config, no layers.</summary>
    public static BaseImage Scratch(Platform? platform = null) => new() { Config = ImageConfig.CreateEmpty(platform), Layers = [] };
}

/// <summary>One step of the stage as it goes into the image: its history text and, for a layer step, its layer.</summary>
public sealed record AssemblyStep
{
    /// <summary>The history <c>created_by</c>, as BuildKit writes it (see <see cref="BuildKitHistory"/>).</summary>
    public required string CreatedBy { get; init; }

    /// <summary>True for a step a worker ran (RUN, COPY, ADD, WORKDIR that creates a directory).</summary>
    public required bool IsLayerStep { get; init; }

    /// <summary>The layer the step produced; null when it changed nothing (then <c>empty_layer</c>).</summary>
    public LayerRef? Layer { get; init; }

    /// <summary>
    /// When the step's job ran (for a cached step: when its layer was first built), its history entry's <c>created</c>
    /// unless the request sets one time for all; null (config-only steps) takes the time of the layer step before it.
    /// </summary>
    public DateTimeOffset? Created { get; init; }

    /// <summary>The assembly step for a planned step and the layer its job produced (null for none).</summary>
    public static AssemblyStep From(BuildStep step, LayerRef? layer)
    {
        ArgumentNullException.ThrowIfNull(step);
        return new AssemblyStep { CreatedBy = BuildKitHistory.CreatedBy(step), IsLayerStep = step.Kind == StepKind.Layer, Layer = layer };
    }
}

/// <summary>Everything that determines an image: same request, same digests.</summary>
public sealed record AssemblyRequest
{
    public required BaseImage Base { get; init; }

    /// <summary>The stage's steps in order.</summary>
    public required IReadOnlyList<AssemblyStep> Steps { get; init; }

    /// <summary>The stage's config after its last step (<see cref="BuildStage.Config"/>).</summary>
    public required StageImageConfig Config { get; init; }

    /// <summary>
    /// True (the default) when <see cref="Config"/> already holds the base config's values, as the planner gives it
    /// once the base config was resolved: the assembler then replaces fields. False merges onto the base instead.
    /// </summary>
    public bool ConfigIncludesBase { get; init; } = true;

    /// <summary><c>--label</c> values; they win over LABEL instructions, as with <c>docker build</c>.</summary>
    public IReadOnlyDictionary<string, string> BuildLabels { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// The config's and every new history entry's time (SOURCE_DATE_EPOCH); null dates each history entry by its step
    /// (<see cref="AssemblyStep.Created"/>) and the config by the last of them, as BuildKit does; with no step that
    /// ran, by the base's last date, else the clock's now.
    /// </summary>
    public DateTimeOffset? Created { get; init; }

    public ImageFormat Format { get; init; } = ImageFormat.Oci;
}

/// <summary>An assembled image: config and manifest with the exact bytes their digests cover.</summary>
public sealed record AssembledImage : ImageContent;
