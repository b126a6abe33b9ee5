using System.Globalization;
using Farm.Oci.Layers;
using Microsoft.Win32.SafeHandles;

namespace Farm.Containers.Sandbox;

/// <summary>
/// The cgroup a RUN step's container nests in (<c>linux.cgroupsPath</c> = <c>/farm-steps/ID/step</c>), created and
/// removed by the sandbox rather than runc: runc removes the container's own cgroup, and its counters with it, the
/// moment the step's process exits, so what happened to the step is read from this one afterwards.
/// </summary>
/// <remarks>
/// The memory limit is set here: the kernel then runs its OOM handler for this cgroup, which reports it through an
/// eventfd registered before the step starts (cgroup v1 <c>cgroup.event_control</c>) or counts it in
/// <c>memory.events</c> (cgroup v2, hierarchical). The container's own cgroup gets the limit plus
/// <see cref="RuntimeSpecGenerator.MemoryHeadroom"/> in <c>linux.resources</c>, so the step sees its limit but this
/// cgroup always runs out first (an equal limit would be hit, and reported, only in the container's cgroup). The pids
/// and CPU limits are in <c>linux.resources</c>; this cgroup's <c>pids.peak</c> (or <c>pids.current</c> while the
/// step runs) shows whether the step reached its pids limit.
/// See docs/architecture.md, "Execution sandbox".
/// </remarks>
internal sealed class StepCgroup : IDisposable
{
    /// <summary>Where cgroup file systems are mounted.</summary>
    public const string MountRoot = "/sys/fs/cgroup";

    /// <summary>The directory under each hierarchy's root that holds the steps' cgroups.</summary>
    public const string ParentName = "farm-steps";

    private readonly string _id;
    private readonly bool _unified;
    private readonly string _memoryDir;
    private readonly string _pidsDir;
    private readonly SafeFileHandle? _oomControl;
    private readonly int _oomEvents = -1;
    private bool _oomSeen;

    private StepCgroup(string id, bool unified, string memoryDir, string pidsDir, SafeFileHandle? oomControl, int oomEvents)
    {
        _id = id;
        _unified = unified;
        _memoryDir = memoryDir;
        _pidsDir = pidsDir;
        _oomControl = oomControl;
        _oomEvents = oomEvents;
    }

    /// <summary>The container's cgroup, for <c>linux.cgroupsPath</c>.</summary>
    public string ContainerPath => $"/{ParentName}/{_id}/step";

    /// <summary>Creates the step's cgroup with its memory limit and starts listening for its OOM events.</summary>
    /// <exception cref="SandboxException">The cgroup could not be created (not root, or the controllers are missing).</exception>
    public static StepCgroup Create(string id, StepLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        var unified = File.Exists(Path.Combine(MountRoot, "cgroup.controllers"));
        try
        {
            if (unified)
            {
                var dir = Path.Combine(MountRoot, ParentName, id);
                EnableControllers(MountRoot);
                Directory.CreateDirectory(Path.Combine(MountRoot, ParentName));
                EnableControllers(Path.Combine(MountRoot, ParentName));
                Directory.CreateDirectory(dir);
                EnableControllers(dir);
                if (limits.MemoryBytes is { } bytes)
                {
                    Write(dir, "memory.max", bytes);
                    WriteIfPresent(dir, "memory.swap.max", 0);
                }

                return new StepCgroup(id, unified: true, dir, dir, null, -1);
            }

            var memory = Path.Combine(MountRoot, "memory", ParentName, id);
            var pids = Path.Combine(MountRoot, "pids", ParentName, id);
            Directory.CreateDirectory(memory);
            Directory.CreateDirectory(pids);
            SafeFileHandle? oomControl = null;
            var events = -1;
            if (limits.MemoryBytes is { } limit)
            {
                Write(memory, "memory.limit_in_bytes", limit);
                // memory+swap at the same value: the step gets no swap (absent when the kernel does not account swap).
                WriteIfPresent(memory, "memory.memsw.limit_in_bytes", limit);
                oomControl = File.OpenHandle(Path.Combine(memory, "memory.oom_control"));
                events = Interop.EventFd();
                if (events < 0)
                {
                    oomControl.Dispose();
                    throw new IOException($"eventfd failed (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
                }

                File.WriteAllText(
                    Path.Combine(memory, "cgroup.event_control"),
                    string.Create(CultureInfo.InvariantCulture, $"{events} {oomControl.DangerousGetHandle()}"));
            }

            return new StepCgroup(id, unified: false, memory, pids, oomControl, events);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Remove(id);
            throw new SandboxException(
                $"the cgroup that limits the step could not be set up under {MountRoot}: {e.Message}. The worker must run as root with the memory and pids cgroup controllers available; or run it without step limits (Farm:Worker:StepLimits).",
                e);
        }
    }

    /// <summary>Whether the kernel's OOM handler ran for the step since it started (its memory limit was exceeded).</summary>
    public bool OomOccurred()
    {
        if (_unified)
        {
            var events = ReadKeyed(Path.Combine(_memoryDir, "memory.events"));
            return events.GetValueOrDefault("oom_kill") > 0 || events.GetValueOrDefault("oom") > 0;
        }

        if (_oomEvents >= 0 && Interop.ReadEventFd(_oomEvents) > 0)
        {
            _oomSeen = true;
        }

        return _oomSeen;
    }

    /// <summary>Whether the step's processes reached <paramref name="limit"/> at some point (or now, where the kernel keeps no peak).</summary>
    public bool PidsReached(int limit)
    {
        var peak = ReadNumber(Path.Combine(_pidsDir, "pids.peak")) ?? ReadNumber(Path.Combine(_pidsDir, "pids.current"));
        return peak >= limit;
    }

    /// <summary>Stops listening and removes the step's cgroup from every hierarchy (runc has removed the container's).</summary>
    public void Dispose()
    {
        if (_oomEvents >= 0)
        {
            Interop.Close(_oomEvents);
        }

        _oomControl?.Dispose();
        Remove(_id);
    }

    /// <summary>
    /// Removes step <paramref name="id"/>'s cgroups from every hierarchy (runc creates the intermediate directories of
    /// <c>cgroupsPath</c> in each one it uses), as after a worker died mid-step. Best effort: a cgroup that still has
    /// processes stays.
    /// </summary>
    public static void Remove(string id)
    {
        var hierarchies = Directory.Exists(MountRoot) ? Directory.EnumerateDirectories(MountRoot).Prepend(MountRoot) : [];
        foreach (var hierarchy in hierarchies)
        {
            var dir = Path.Combine(hierarchy, ParentName, id);
            foreach (var path in (string[])[Path.Combine(dir, "step"), dir])
            {
                try
                {
                    if (Directory.Exists(path))
                    {
                        // rmdir: a cgroup directory goes with its control files, which cannot be deleted one by one.
                        Directory.Delete(path, recursive: false);
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Still busy; the next recovery of this state directory tries again.
                }
            }
        }
    }

    private static void EnableControllers(string dir)
    {
        var available = File.ReadAllText(Path.Combine(dir, "cgroup.controllers")).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var wanted = available.Intersect(["memory", "pids", "cpu"]).Select(c => "+" + c);
        File.WriteAllText(Path.Combine(dir, "cgroup.subtree_control"), string.Join(' ', wanted));
    }

    private static void Write(string dir, string file, long value) =>
        File.WriteAllText(Path.Combine(dir, file), value.ToString(CultureInfo.InvariantCulture));

    private static void WriteIfPresent(string dir, string file, long value)
    {
        if (File.Exists(Path.Combine(dir, file)))
        {
            Write(dir, file, value);
        }
    }

    private static long? ReadNumber(string path)
    {
        try
        {
            var text = File.ReadAllText(path).Trim();
            return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static Dictionary<string, long> ReadKeyed(string path)
    {
        var values = new Dictionary<string, long>(StringComparer.Ordinal);
        try
        {
            foreach (var line in File.ReadAllLines(path))
            {
                var parts = line.Split(' ', 2);
                if (parts.Length == 2 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                {
                    values[parts[0]] = n;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No memory controller here: nothing to report.
        }

        return values;
    }
}
