namespace Farm.Testing;

/// <summary>
/// An extracted base layer made from busybox-static, for the sandbox and worker tests: busybox in /bin with a link per
/// applet, /etc/passwd (root, app 1000, nobody), /etc/group (staff 50 with app), /etc/motd, /home/app (owned by app)
/// and /root; no /proc, /dev, /sys or /etc/hosts.
/// </summary>
public static class BusyboxLayer
{
    /// <summary>Writes the layer into <paramref name="dir"/>.</summary>
    public static void Build(string dir)
    {
        if (!File.Exists("/bin/busybox"))
        {
            throw new InvalidOperationException("/bin/busybox is required to build the test image: apt-get install busybox-static (or run infra/install.sh).");
        }

        Directory.CreateDirectory(Path.Combine(dir, "bin"));
        File.Copy("/bin/busybox", Path.Combine(dir, "bin", "busybox"));
        var applets = Tool.RunAsync("/bin/busybox", "--list-full").GetAwaiter().GetResult();
        foreach (var applet in applets.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var link = Path.Combine(dir, applet);
            if (applet == "bin/busybox" || File.Exists(link))
            {
                continue;
            }

            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            File.CreateSymbolicLink(link, "/bin/busybox");
        }

        Directory.CreateDirectory(Path.Combine(dir, "etc"));
        File.WriteAllText(Path.Combine(dir, "etc", "passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
        File.WriteAllText(Path.Combine(dir, "etc", "group"),
            "root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n");
        File.WriteAllText(Path.Combine(dir, "etc", "motd"), "lower\n");
        Directory.CreateDirectory(Path.Combine(dir, "home", "app"));
        Tool.RunAsync("chown", "1000:1000", Path.Combine(dir, "home", "app")).GetAwaiter().GetResult();
        Directory.CreateDirectory(Path.Combine(dir, "root"));
    }
}
