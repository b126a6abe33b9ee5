using System.Globalization;

namespace Farm.Dockerfile.Graph;

/// <summary>
/// The build arg <c>SOURCE_DATE_EPOCH</c>, as BuildKit reads it (<c>--build-arg SOURCE_DATE_EPOCH=N</c>): the image
/// config's and every history entry's <c>created</c>, and the latest modification time any entry of a new layer may
/// have, so that the same inputs give the same image digest on any worker.
/// </summary>
/// <remarks>https://reproducible-builds.org/specs/source-date-epoch/; https://docs.docker.com/build/ci/github-actions/reproducible-builds/</remarks>
public static class SourceDateEpoch
{
    /// <summary>The build arg's name; a predefined arg, never reported as unused.</summary>
    public const string ArgName = "SOURCE_DATE_EPOCH";

    /// <summary>The time the build args give, or null when they do not set it (or set it empty).</summary>
    /// <exception cref="BuildGraphException">FARM1320: the value is not a whole number of seconds since 1970.</exception>
    public static DateTimeOffset? FromBuildArgs(IReadOnlyDictionary<string, string> buildArgs)
    {
        ArgumentNullException.ThrowIfNull(buildArgs);
        if (!buildArgs.TryGetValue(ArgName, out var value) || value.Length == 0)
        {
            return null;
        }

        // Seconds up to 9999-12-31, the last time a config's RFC 3339 `created` can hold.
        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds > 253402300799)
        {
            throw new BuildGraphException(
                BuildGraphErrorCodes.InvalidSourceDateEpoch,
                $"the build arg {ArgName}='{value}' is not a whole number of seconds since 1970-01-01 UTC; pass one, e.g. --build-arg {ArgName}=$(git log -1 --format=%ct).");
        }

        return DateTimeOffset.FromUnixTimeSeconds(seconds);
    }
}
