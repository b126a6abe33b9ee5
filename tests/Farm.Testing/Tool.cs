using System.Diagnostics;

namespace Farm.Testing;

/// <summary>Runs the independent OCI clients (skopeo, umoci, podman) that check what Farm writes, and other commands a user runs.</summary>
public static class Tool
{
    /// <summary>Runs <paramref name="file"/> and returns its stdout; a non-zero exit fails with its stderr.</summary>
    public static Task<string> RunAsync(string file, params string[] arguments) =>
        RunAsync(new Dictionary<string, string>(), file, arguments);

    /// <summary>Runs <paramref name="file"/> with <paramref name="environment"/> added to this process's environment.</summary>
    public static async Task<string> RunAsync(IReadOnlyDictionary<string, string> environment, string file, params string[] arguments)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{file} is missing: run infra/install.sh (apt-get install -y {file}).", e);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync().ConfigureAwait(false);
            var output = await stdout.ConfigureAwait(false);
            var errors = await stderr.ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} exited {process.ExitCode}: {errors.Trim()}");
            }

            return output;
        }
    }
}
